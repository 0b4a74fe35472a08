"""The server in the image trusts the proxy in front of it, not every peer (issue 13, "the container argv").

Today the container plan sets FORWARDED_ALLOW_IPS to "*" when the settings do
not: the Dockerfile's CMD says ``--forwarded-allow-ips *`` (uvicorn, gunicorn),
and granian's and hypercorn's ``deploykit.proxy`` rebuilds the plan from
settings inside the container (no BIND: a unix socket, so "*" as well). With no
NetworkPolicy, any pod that reaches the port can forge X-Forwarded-For/-Proto.

The trust list is read from what the files give the server: the argv's
``--forwarded-allow-ips`` and any environment variable whose name contains
FORWARDED_ALLOW_IPS (uvicorn and gunicorn read that name themselves; the env
contract of issue 13 is assumed to use it too: rename ``TRUST_VARIABLES`` if not).
daphne is not here: it has no trust list at all.
"""

from __future__ import annotations

import json
import shlex

import pytest
import yaml

from tests.test_containers import case_plan, dockerfile_instructions, rendered

TRUST_FLAG = "--forwarded-allow-ips"
#: deploykit.serverenv.TRUSTED_PROXIES: what deploykit.proxy trusts for granian and hypercorn (empty: it applies
#: nothing, the server does from its own --forwarded-allow-ips); FORWARDED_ALLOW_IPS: whose headers it keeps
#: where uvicorn applied them.
TRUST_VARIABLES = ("DEPLOYKIT_SERVER_TRUSTED_PROXIES", "DEPLOYKIT_SERVER_FORWARDED_ALLOW_IPS")


def is_trust_variable(key: str) -> bool:
    return any(name in key for name in TRUST_VARIABLES)


def trust_lists(files: dict[str, str]) -> dict[str, str]:
    """Where a container file sets the server's trust list -> the value it sets."""
    found: dict[str, str] = {}
    docker = dockerfile_instructions(files["Dockerfile"])
    argv = json.loads(docker["CMD"][-1])
    if TRUST_FLAG in argv:
        found["Dockerfile CMD"] = argv[argv.index(TRUST_FLAG) + 1]
    for line in docker.get("ENV", []):
        for word in shlex.split(line):
            key, _, value = word.partition("=")
            if is_trust_variable(key):
                found[f"Dockerfile ENV {key}"] = value
    app = yaml.safe_load(files["docker-compose.yml"])["services"]["app"]
    environment = app.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    for key, value in environment.items():
        if is_trust_variable(key):
            found[f"compose environment {key}"] = str(value)
    for doc in yaml.safe_load_all(files["kubernetes.yaml"]):
        if doc and doc["kind"] == "ConfigMap":
            for key, value in (doc.get("data") or {}).items():
                if is_trust_variable(key):
                    found[f"ConfigMap {key}"] = str(value)
        if doc and doc["kind"] == "Deployment":
            for container in doc["spec"]["template"]["spec"]["containers"]:
                for item in container.get("env") or []:
                    if is_trust_variable(item["name"]) and "value" in item:
                        found[f"Deployment env {item['name']}"] = str(item["value"])
    return found


@pytest.mark.parametrize("server", ["uvicorn", "gunicorn", "granian", "hypercorn"])
def test_the_server_in_the_image_does_not_trust_every_peer_by_default(server: str) -> None:
    with case_plan("uvicorn-redis-tls", SERVER=server) as plan:
        assert plan.server.proxy_headers
        files = rendered(plan)
    found = trust_lists(files)
    print(f"{server}: {found}")
    # The image itself carries it: `docker run` has nothing else.
    assert any(where.startswith("Dockerfile") for where in found), f"{server}: no trust list in the image: {found}"
    for where in [w for w, value in found.items() if w.endswith("TRUSTED_PROXIES") and value == ""]:
        # uvicorn, gunicorn: the server applies its own list (the CMD's); the wrapper only drops the other peers'
        # headers, by the same list.
        assert found[where.replace("TRUSTED_PROXIES", "FORWARDED_ALLOW_IPS")] == found["Dockerfile CMD"], where
        del found[where]
    for where, value in found.items():
        entries = [entry.strip() for entry in value.split(",")]
        assert entries != [""] and "*" not in entries, f"{server}: {where} trusts {value!r}"
