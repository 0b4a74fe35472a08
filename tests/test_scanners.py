"""Third-party scanners over the generated files (issue 14, "In CI from now on").

gixy-next over every nginx site of the matrix and the Compose stack's site: a
HIGH or MEDIUM finding passes only when a comment right above the directive
names it (``# gixy PLUGIN: why``). checkov over the Dockerfile and the
Kubernetes manifests: every failed check is fixed, or skipped in the file with
its reason (``checkov.io/skipN`` annotations, ``# checkov:skip=`` comments).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from deploykit.nginxprefix import NginxPrefix
from deploykit.targets.compose import Compose
from deploykit.targets.docker import Dockerfile
from deploykit.targets.kubernetes import Kubernetes
from deploykit.targets.nginx import Nginx
from tests.conftest import require_tool
from tests.test_containers import CASES, case_plan
from tests.test_targets_matrix import COMBOS, EDGE, SERVERS, matrix_plan

#: Findings another change is removing: the test fails once they are gone, so the entry goes too.
PENDING: dict[str, str] = {}
_EXPLAINED = re.compile(r"#\s*gixy\s+([a-z0-9_]+)\s*:")


def gixy_findings(sites: dict[str, str], tmp_path: Path) -> list[dict[str, Any]]:
    """gixy's JSON findings over each site, included in a minimal nginx.conf like Debian's."""
    gixy = require_tool("gixy")
    confs = []
    for name, text in sites.items():
        prefix = tmp_path / name
        prefix.mkdir()
        (prefix / "site.conf").write_text(text)
        # Debian's nginx.conf sets worker_processes auto; the wrapper is ours, not the generated file.
        confs.append(str(NginxPrefix(prefix).write([prefix / "site.conf"], worker_processes="auto")))
    done = subprocess.run([gixy, "-f", "json", *confs], capture_output=True, text=True, timeout=120, check=False)
    assert done.stdout.strip(), done.stderr
    return list(json.loads(done.stdout))


def explanation(finding: dict[str, Any]) -> str | None:
    """The plugin named by the comment block right above the finding's line (or on it), if any."""
    if "file" not in finding or "line" not in finding:
        return None
    lines = Path(finding["file"]).read_text().splitlines()
    index = finding["line"] - 1
    block = [lines[index]]
    while index > 0 and lines[index - 1].strip().startswith("#"):
        index -= 1
        block.append(lines[index])
    named = {m.group(1) for line in block for m in _EXPLAINED.finditer(line)}
    return finding["plugin"] if finding["plugin"] in named else None


def test_gixy_finds_nothing_unexplained_in_the_nginx_sites(tmp_path: Path) -> None:
    sites = {}
    for server in SERVERS:
        for bind, tls, subpath in COMBOS:
            sites[f"{server}-{bind}-{tls}-{subpath}"] = Nginx(matrix_plan(server, bind, tls, subpath)).render()
    for bind, tls, subpath in COMBOS:
        # Behind a CDN (TRUSTED_PROXIES): realip, the geo and map on the edge's scheme.
        sites[f"edge-{bind}-{tls}-{subpath}"] = Nginx(matrix_plan("uvicorn", bind, tls, subpath, **EDGE)).render()
    for case in CASES:
        with case_plan(case) as plan:
            sites[f"compose-{case}"] = Compose(plan).nginx_site()
        # Split serving: the http and websocket services, both re-resolved.
        with (
            override_settings(WSGI_APPLICATION="testproject.wsgi.application"),
            case_plan(case, WSGI_SERVER="gunicorn") as plan,
        ):
            sites[f"compose-split-{case}"] = Compose(plan).nginx_site()
    findings = gixy_findings(sites, tmp_path)
    serious = [f for f in findings if f["severity"] in ("HIGH", "MEDIUM")]
    pending = {f["plugin"] for f in serious if f["plugin"] in PENDING}
    unexplained = sorted(
        {
            f"{f['plugin']} ({f['severity']}) at {Path(f.get('file', '?')).parent.name}:{f.get('line')}: {f['reason']}"
            for f in serious
            if f["plugin"] not in PENDING and explanation(f) is None
        }
    )
    assert not unexplained, "\n".join(unexplained)
    assert pending == set(PENDING), f"fixed, drop from PENDING: {set(PENDING) - pending}"


def test_gixy_reports_an_unexplained_finding(tmp_path: Path) -> None:
    """The check can fail: the explaining comment removed, the finding counts again."""
    site = Nginx(matrix_plan("uvicorn", "tcp", False, False)).render()
    bare = re.sub(r"\n\s*# gixy [a-z_]+:[^\n]*", "", site)
    (finding,) = [f for f in gixy_findings({"bare": bare}, tmp_path) if f["plugin"] == "host_spoofing"]
    assert explanation(finding) is None


def checkov(framework: str, path: Path) -> dict[str, Any]:
    binary = require_tool("checkov")
    # Not --quiet: the skipped checks and their reasons are in the report too.
    argv = [binary, "--compact", "-o", "json", "--framework", framework, "-f", str(path)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    report = json.loads(done.stdout)
    return report[0] if isinstance(report, list) else report


def checkov_directory(frameworks: tuple[str, ...], path: Path) -> dict[str, dict[str, Any]]:
    """One checkov run over a folder for several frameworks: each framework's report."""
    binary = require_tool("checkov")
    argv = [binary, "--compact", "-o", "json", "--framework", *frameworks, "-d", str(path)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    report = json.loads(done.stdout)
    reports = report if isinstance(report, list) else [report]
    by_type = {r["check_type"]: r for r in reports}
    assert set(by_type) == set(frameworks), (set(by_type), done.stderr[-2000:])
    return by_type


@pytest.mark.parametrize("split", [False, True], ids=["asgi", "split"])
@pytest.mark.parametrize("case", CASES)
def test_checkov_passes_the_dockerfile_and_the_manifests(case: str, split: bool, tmp_path: Path) -> None:
    # Split serving: two Deployments, Services, PDBs, HPAs and the canary Ingress, held to the same checks;
    # with METRICS_PATH (issue 17 item 7): the pod annotations and the Ingress that refuses the path.
    extra = {"WSGI_SERVER": "gunicorn", "METRICS_PATH": "/-/metrics"} if split else {}
    with override_settings(WSGI_APPLICATION="testproject.wsgi.application"), case_plan(case, **extra) as plan:
        files = {"Dockerfile": Dockerfile(plan).render(), "kubernetes.yaml": Kubernetes(plan).render()}
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    # One checkov run for both files (its start-up is most of its time: the fast loop's budget).
    reports = checkov_directory(("dockerfile", "kubernetes"), tmp_path)
    for name, framework in (("Dockerfile", "dockerfile"), ("kubernetes.yaml", "kubernetes")):
        report = reports[framework]
        assert report["summary"]["parsing_errors"] == 0
        failed = [
            f"{c['check_id']} {c['check_name']} ({c['resource']})" for c in report["results"].get("failed_checks", [])
        ]
        assert not failed, f"{name}: " + "; ".join(failed)
        assert report["summary"]["passed"] > 50  # checkov checked the file, not an empty parse
        for skipped in report["results"]["skipped_checks"]:
            assert len(skipped["check_result"].get("suppress_comment", "")) > 20, skipped["check_id"]
        skipped_ids = {s["check_id"] for s in report["results"]["skipped_checks"]}
        assert "CKV2_K8S_6" not in skipped_ids  # the NetworkPolicy fixes it: never skipped
