"""Issue 17 items 1-3: background processes, the release step and timers, read into the plan and validated there."""

from __future__ import annotations

import shlex
from typing import Any

import pytest
from django.test import override_settings

from deploykit.exceptions import SpecError
from deploykit.plan import build_plan
from deploykit.processes import argv

REDIS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://r:6379/1"]}}}
CELERY = {
    "celery": {"kind": "celery-worker", "app": "config.celery_app", "concurrency": 2, "queues": ["default", "mail"]},
    "beat": {"kind": "celery-beat", "app": "config.celery_app"},
}


def dk(**values: object) -> dict[str, object]:
    from tests import settings

    return {**settings.DEPLOYKIT, **values}


def plan_with(**values: Any) -> Any:
    with override_settings(DEPLOYKIT=dk(**values), CHANNEL_LAYERS=REDIS):
        return build_plan()


def test_celery_worker_and_beat_argv_and_stop() -> None:
    plan = plan_with(BACKGROUND_PROCESSES=CELERY)
    worker, beat = plan.processes.background
    python = plan.process_manager.python
    assert worker.unit == "example-celery"
    assert argv(plan, worker) == [
        python, "-m", "celery", "--app", "config.celery_app", "worker", "--loglevel", "INFO",
        "--concurrency", "2", "--queues", "default,mail",
    ]  # fmt: skip
    # Celery's warm shutdown: TERM lets running tasks finish; the stop timeout leaves them time.
    assert worker.stop_signal == "TERM"
    assert worker.stop_timeout >= 300
    assert beat.replicas == 1
    assert argv(plan, beat) == [
        python, "-m", "celery", "--app", "config.celery_app", "beat", "--loglevel", "INFO",
        "--schedule", "/var/lib/example-beat/celerybeat-schedule",
    ]  # fmt: skip
    assert beat.state_directory == "/var/lib/example-beat"


def test_runworker_and_any_command() -> None:
    plan = plan_with(
        BACKGROUND_PROCESSES={
            "thumbnails": {"kind": "runworker", "channels": ["thumbnails-generate", "mail.send"]},
            "sessions": {"kind": "command", "command": "clearsessions"},
        }
    )
    runworker, command = plan.processes.background
    python = plan.process_manager.python
    assert argv(plan, runworker) == [python, "-m", "django", "runworker", "thumbnails-generate", "mail.send"]
    # asgiref's StatelessServer stops cleanly on KeyboardInterrupt only; TERM would kill it mid-message.
    assert runworker.stop_signal == "INT"
    assert argv(plan, command) == [python, "-m", "django", "clearsessions"]


@pytest.mark.parametrize(
    ("processes", "setting", "message"),
    [
        ({"Bad Name": {"kind": "command", "command": "check"}}, 'DEPLOYKIT["BACKGROUND_PROCESSES"]', "must match"),
        ({"w": {"kind": "cron"}}, 'DEPLOYKIT["BACKGROUND_PROCESSES"]["w"]["kind"]', "must be one of"),
        ({"w": {"kind": "celery-worker"}}, 'DEPLOYKIT["BACKGROUND_PROCESSES"]["w"]["app"]', "must be a string"),
        (
            {"w": {"kind": "celery-beat", "app": "config.celery_app", "replicas": 2}},
            'DEPLOYKIT["BACKGROUND_PROCESSES"]["w"]["replicas"]',
            "beat must run once",
        ),
        ({"w": {"kind": "runworker", "channels": []}}, 'DEPLOYKIT["BACKGROUND_PROCESSES"]["w"]["channels"]', "name"),
        (
            {"w": {"kind": "runworker", "channels": ["no spaces"]}},
            'DEPLOYKIT["BACKGROUND_PROCESSES"]["w"]["channels"]',
            "channel name",
        ),
        (
            {"w": {"kind": "command", "command": "no_such_command"}},
            'DEPLOYKIT["BACKGROUND_PROCESSES"]["w"]["command"]',
            "no management command",
        ),
        (
            {"w": {"kind": "command", "command": "check", "colour": "red"}},
            'DEPLOYKIT["BACKGROUND_PROCESSES"]["w"]',
            "unknown keys",
        ),
        (
            {"release": {"kind": "command", "command": "check"}},
            'DEPLOYKIT["BACKGROUND_PROCESSES"]',
            "reserved",
        ),
        (
            {"w": {"kind": "command", "command": ["check", "--tag", "$HOME"]}},
            'DEPLOYKIT["BACKGROUND_PROCESSES"]["w"]["command"]',
            "may contain only",
        ),
    ],
)
def test_background_processes_are_validated_where_read(processes: object, setting: str, message: str) -> None:
    with pytest.raises(SpecError, match=message) as info:
        plan_with(BACKGROUND_PROCESSES=processes)
    assert info.value.setting == setting


def test_runworker_needs_a_layer_that_crosses_processes() -> None:
    with override_settings(DEPLOYKIT=dk(BACKGROUND_PROCESSES={"w": {"kind": "runworker", "channels": ["a"]}})):
        with pytest.raises(SpecError, match="in-memory") as info:
            build_plan()
    assert info.value.setting == 'DEPLOYKIT["BACKGROUND_PROCESSES"]["w"]'


def test_release_defaults_to_migrate_and_collectstatic_on_hosts_migrate_in_the_image() -> None:
    plan = plan_with()
    assert plan.processes.release == (("migrate", "--noinput"), ("collectstatic", "--noinput"))
    # The Dockerfile collects static files at build time: the image's release only migrates.
    assert plan.container.processes.release == (("migrate", "--noinput"),)
    assert argv(plan, plan.processes.release_process) == [
        plan.process_manager.python, "-m", "django", "runrelease",
        "--step", "migrate --noinput", "--step", "collectstatic --noinput",
    ]  # fmt: skip
    assert plan_with(RELEASE_COMMANDS=[]).processes.release == ()
    with pytest.raises(SpecError, match="no management command") as info:
        plan_with(RELEASE_COMMANDS=["migrat"])
    assert info.value.setting == 'DEPLOYKIT["RELEASE_COMMANDS"][0]'


@pytest.mark.parametrize(
    ("schedule", "calendar"),
    [
        ("daily", "*-*-* 00:00:00 UTC"),
        ("hourly", "*-*-* *:00:00 UTC"),
        ("30 3 * * *", "*-*-* 03:30:00 UTC"),
        ("*/15 * * * *", "*-*-* *:00/15:00 UTC"),
        ("0 4 * * 1-5", "Mon..Fri *-*-* 04:00:00 UTC"),
        ("0 0 1 */3 *", "*-01/3-01 00:00:00 UTC"),
        ("5,35 8-18/2 * * sun", "Sun *-*-* 08..18/2:05,35:00 UTC"),
    ],
)
def test_timer_schedules_are_cron_and_systemd_calendar(schedule: str, calendar: str) -> None:
    plan = plan_with(TIMERS={"clearsessions": {"command": "clearsessions", "schedule": schedule}})
    [timer] = plan.processes.timers
    assert timer.unit == "example-clearsessions"
    assert timer.on_calendar == calendar
    assert argv(plan, timer) == [plan.process_manager.python, "-m", "django", "clearsessions"]


@pytest.mark.parametrize("schedule", ["", "every day", "61 * * * *", "* * * *", "0 0 30 2 *x", "0 0 * * 8", "@reboot"])
def test_bad_schedules_name_the_setting(schedule: str) -> None:
    with pytest.raises(SpecError) as info:
        plan_with(TIMERS={"c": {"command": "clearsessions", "schedule": schedule}})
    assert info.value.setting == 'DEPLOYKIT["TIMERS"]["c"]["schedule"]'


def test_names_are_unique_across_processes_and_timers() -> None:
    with pytest.raises(SpecError, match="already") as info:
        plan_with(
            BACKGROUND_PROCESSES={"sessions": {"kind": "command", "command": "check"}},
            TIMERS={"sessions": {"command": "clearsessions", "schedule": "daily"}},
        )
    assert info.value.setting == 'DEPLOYKIT["TIMERS"]'


def test_celery_broker_is_a_peer_of_every_unit() -> None:
    layer = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://127.0.0.1"]}}}
    with override_settings(DEPLOYKIT=dk(BACKGROUND_PROCESSES=CELERY), CHANNEL_LAYERS=layer):
        assert build_plan().process_manager.ip_address_allow == ("localhost",)
        # The view that enqueues a task (the web unit) and the worker (same allow list) both reach the broker.
        with override_settings(CELERY_BROKER_URL="redis://:pw@10.1.2.3:6379/2", CELERY_RESULT_BACKEND="rpc://"):
            assert build_plan().process_manager.ip_address_allow == ("localhost", "10.1.2.3")


def test_runprocess_prints_the_argv_the_units_contain() -> None:
    from io import StringIO

    from django.core.management import call_command

    from deploykit.targets.processes import SystemdProcesses
    from tests.parsers import systemd_exec, systemd_unit

    with override_settings(DEPLOYKIT=dk(BACKGROUND_PROCESSES=CELERY, TIMERS={"c": {"command": "clearsessions", "schedule": "daily"}}), CHANNEL_LAYERS=REDIS):
        plan = build_plan()
        units = {f.name: f.content for f in SystemdProcesses(plan).files()}
        for name, unit in (("celery", "example-celery"), ("beat", "example-beat"), ("c", "example-c"), ("release", "example-release")):
            out = StringIO()
            call_command("runprocess", name, "--print-command", stdout=out)
            exec_start = dict((k, val) for _, k, val in systemd_unit(units[f"{unit}.service"]))["ExecStart"]
            assert shlex.split(out.getvalue())[1:] == systemd_exec(exec_start), name
            assert out.getvalue().startswith("DJANGO_SETTINGS_MODULE=tests.settings ")
        out = StringIO()
        call_command("runprocess", "--list", stdout=out)
        assert out.getvalue().split() == ["celery", "beat", "c", "release"]
