"""Error messages never show a password or an environment value, and stay short (issue 14 item 12)."""

from __future__ import annotations

import pytest

from deploykit.exceptions import SpecError
from deploykit.plan import build_plan


def test_a_url_password_is_redacted() -> None:
    error = SpecError('DEPLOYKIT["REDIS_URL"]', "redis://:hunter2@10.0.0.5:6379/0", "bad")
    print(error)
    assert "hunter2" not in str(error)
    assert "redis://:***@10.0.0.5:6379/0" in str(error)


def test_a_password_query_argument_is_redacted() -> None:
    error = SpecError('DEPLOYKIT["REDIS_URL"]', "redis://10.0.0.5:6379/0?password=hunter2&db=1", "bad")
    assert "hunter2" not in str(error) and "password=***" in str(error)


def test_environment_values_are_redacted() -> None:
    with pytest.raises(SpecError) as info:
        build_plan({"ENVIRONMENT": {"API_KEY": "sk-live-hunter2\x00"}})
    print(info.value)
    assert "hunter2" not in str(info.value) and "API_KEY" in str(info.value)


def test_long_values_are_cut() -> None:
    error = SpecError('DEPLOYKIT["STATIC_URL"]', "/" + "a" * 100_000, "too long")
    print(len(str(error)))
    assert len(str(error)) < 400 and "100001 characters" in str(error)


def test_e006_does_not_print_the_layers_password() -> None:
    from django.test import override_settings

    from deploykit import checks

    layers = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": "redis://:hunter2@10.0.0.5:6379/0", "socket_timeout": None}]},
        }
    }
    with override_settings(CHANNEL_LAYERS=layers, DEPLOYKIT={"REDIS_URL": "redis://10.0.0.9:6379/0"}):
        [message] = [m for m in checks.check_deploy() if m.id == "deploykit.E006"]
    assert "hunter2" not in message.msg and "10.0.0.5" in message.msg
