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
    layer = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://127.0.0.1"]}}
    }
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

    with override_settings(
        DEPLOYKIT=dk(BACKGROUND_PROCESSES=CELERY, TIMERS={"c": {"command": "clearsessions", "schedule": "daily"}}),
        CHANNEL_LAYERS=REDIS,
    ):
        plan = build_plan()
        units = {f.name: f.content for f in SystemdProcesses(plan).files()}
        for name, unit in (
            ("celery", "example-celery"),
            ("beat", "example-beat"),
            ("c", "example-c"),
            ("release", "example-release"),
        ):
            out = StringIO()
            call_command("runprocess", name, "--print-command", stdout=out)
            exec_start = dict((k, val) for _, k, val in systemd_unit(units[f"{unit}.service"]))["ExecStart"]
            assert shlex.split(out.getvalue())[1:] == systemd_exec(exec_start), name
            assert out.getvalue().startswith("DJANGO_SETTINGS_MODULE=tests.settings ")
        out = StringIO()
        call_command("runprocess", "--list", stdout=out)
        assert out.getvalue().split() == ["celery", "beat", "c", "release"]


@pytest.mark.parametrize("manager", ["systemd", "supervisor"])
def test_install_md_runs_the_release_before_the_code_serves(manager: str) -> None:
    from deploykit.targets import bundle

    extra = {"PROCESS_MANAGER": manager, "BIND": "127.0.0.1:8001"} if manager == "supervisor" else {}
    plan = plan_with(
        BACKGROUND_PROCESSES=CELERY, TIMERS={"c": {"command": "clearsessions", "schedule": "daily"}}, **extra
    )
    guide = bundle.install_guide(plan, bundle.parts(plan)).content
    lines = guide.splitlines()

    def line(text: str) -> int:
        [index] = [i for i, line in enumerate(lines) if text in line]
        return index

    if manager == "systemd":
        assert "manage.py migrate" not in guide  # the release unit migrates
        assert line("install -m 0644 example-release.service") < line("systemctl enable example-release.service")
        assert line("systemctl enable example-release.service") < line("systemctl enable --now example.service")
        assert "example-celery.service example-beat.service example-c.timer" in guide
        assert "systemctl restart example-release.service" in guide
    else:
        assert line("runrelease --step 'migrate --noinput'") < line("supervisorctl reread && supervisorctl update")
        assert line("install -d -o example -g example -m 0700 /var/lib/example-beat") < line("supervisorctl reread")
        assert "0 0 * * * cd /srv/example/app && env DJANGO_SETTINGS_MODULE=tests.settings" in guide


# -- checks: E008, W021, W022 -------------------------------------------------------------------------------


def deploy_ids(**values: Any) -> list[str]:
    from deploykit import checks

    with override_settings(DEPLOYKIT=dk(**values), CHANNEL_LAYERS=REDIS):
        return [m.id for m in checks.check_deploy() if m.id]


def test_e008_release_on_a_database_without_a_lock() -> None:
    oracle = {"default": {"ENGINE": "django.db.backends.oracle", "NAME": "xe", "HOST": "10.0.0.9"}}
    with override_settings(DATABASES=oracle):
        assert "deploykit.E008" in deploy_ids()
        assert "deploykit.E008" not in deploy_ids(RELEASE_COMMANDS=[])
    assert "deploykit.E008" not in deploy_ids()  # SQLite: a file lock


def test_w021_celery_configured_without_a_worker() -> None:
    with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:6379/1"):
        assert "deploykit.W021" in deploy_ids()
        assert "deploykit.W021" not in deploy_ids(BACKGROUND_PROCESSES=CELERY)
    assert "deploykit.W021" not in deploy_ids()


def test_w022_worker_stop_timeout_below_the_task_time_limit() -> None:
    with override_settings(CELERY_TASK_TIME_LIMIT=900):
        assert "deploykit.W022" in deploy_ids(BACKGROUND_PROCESSES=CELERY)
        longer = {**CELERY, "celery": {**CELERY["celery"], "stop_timeout": 960}}
        assert "deploykit.W022" not in deploy_ids(BACKGROUND_PROCESSES=longer)
    # cookiecutter-django's 5 minutes fit the default 300 s.
    with override_settings(CELERY_TASK_TIME_LIMIT=300):
        assert "deploykit.W022" not in deploy_ids(BACKGROUND_PROCESSES=CELERY)


def test_celerysite_passes_check_deploy_without_deploykit_messages() -> None:
    from tests.procs import PROJECTS, project_env, project_manage

    project = PROJECTS / "celerysite"
    env = project_env(project, DJANGO_SETTINGS_MODULE="config.settings.production", DJANGO_SECRET_KEY="k" * 60)
    done = project_manage(project, env, "check", "--deploy")
    assert done.returncode == 0, done.stderr
    assert "deploykit." not in done.stdout + done.stderr
    # Its worker and beat are in the plan, with the cookiecutter app path.
    listed = project_manage(project, env, "runprocess", "--list")
    assert listed.stdout.split() == ["celeryworker", "celerybeat", "clearsessions", "release"]
