"""deploykit.nginxprefix: the one nginx.conf around site files that --check, the e2e tests and the benchmark run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from deploykit.nginxprefix import TEMP_PATHS, NginxPrefix
from tests import parsers
from tests.conftest import require_tool

SITE = "server { listen 127.0.0.1:1; return 204; }\n"


def directives(block: list[list[object]]) -> dict[str, list[object]]:
    return {str(d[0]): d for d in block}


def test_defaults_keep_every_file_in_the_prefix(tmp_path: Path) -> None:
    site = tmp_path / "site.conf"
    site.write_text(SITE)
    prefix = NginxPrefix(tmp_path / "p")
    tree = parsers.nginx_tree(prefix.write([site]))
    top = directives(tree)
    assert ("user" in top) == (os.geteuid() == 0)
    assert "worker_processes" not in top
    assert top["pid"][1] == [str(prefix.root / "nginx.pid")]
    assert top["error_log"][1] == [str(prefix.error_log)]
    assert top["events"][2] == []
    http = top["http"][2]
    assert ["access_log", ["off"], None] in http
    assert ["include", [str(site)], None] == http[-1]
    for kind in TEMP_PATHS:
        assert [f"{kind}_temp_path", [str(prefix.root / "tmp" / kind)], None] in http
        assert (prefix.root / "tmp" / kind).is_dir()
    assert prefix.argv("-x") == [
        "nginx",
        "-p",
        f"{prefix.root}/",
        "-c",
        str(prefix.conf),
        "-e",
        str(prefix.error_log),
        "-x",
    ]


def test_parameters_for_the_benchmark_and_the_e2e_stacks(tmp_path: Path) -> None:
    prefix = NginxPrefix(tmp_path)
    conf = prefix.write(
        [tmp_path / "a.conf", tmp_path / "b.conf"],
        access_log_format="timed",
        error_log_level="info",
        worker_processes="auto",
        worker_connections=4096,
        http=["log_format timed '$msec $status'", "sendfile on"],
    )
    top = directives(parsers.nginx_tree(conf))
    assert top["worker_processes"][1] == ["auto"]
    assert top["error_log"][1] == [str(prefix.error_log), "info"]
    assert top["events"][2] == [["worker_connections", ["4096"], None]]
    http = top["http"][2]
    names = [d[0] for d in http]
    # log_format before the access_log that names it; the sites last.
    assert names.index("log_format") < names.index("access_log") < names.index("include", 1)
    assert ["access_log", [str(prefix.access_log), "timed"], None] in http
    assert ["sendfile", ["on"], None] in http
    assert http[-2:] == [["include", [str(tmp_path / "a.conf")], None], ["include", [str(tmp_path / "b.conf")], None]]


def test_nginx_accepts_it_as_this_user(tmp_path: Path) -> None:
    site = tmp_path / "site.conf"
    site.write_text(SITE)
    prefix = NginxPrefix(tmp_path / "p", require_tool("nginx"))
    prefix.write([site], access_log_format="combined", worker_connections=4096)
    done = subprocess.run(prefix.test_argv(), capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
