"""The proxy in front of bench.redeploy's two slots: nginx, Apache or Caddy serving the site and upstream file
``deployconfig PROXY`` wrote, on loopback in the stack's folder, and the test and graceful reload that
``manage.py redeploy`` runs against that instance (its ``--proxy-test`` / ``--proxy-reload``).

Each is the proxy's own command for the job, pointed at this instance's configuration: ``nginx -t`` /
``nginx -s reload`` in a prefix; ``apachectl -t`` / ``apachectl -k graceful`` (what ``apachectl graceful``
runs after its test: SIGUSR1 to the parent) with ``-d``/``-f``; ``caddy validate`` / ``caddy reload`` on a
main Caddyfile that imports the site, its admin endpoint on a loopback port.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from deploykit.nginxprefix import NginxPrefix
from deploykit.targets.apache import check_conf
from tests.procs import free_port

PROXIES = ("nginx", "apache", "caddy")


@dataclass(frozen=True)
class ProxyFront:
    """How to run one proxy in the foreground, test its configuration and reload it gracefully."""

    serve: list[str]
    test: list[str]
    reload: list[str]
    #: The serving process's environment (None: this one's).
    env: dict[str, str] | None = None


def front(proxy: str, site_dir: Path, root: Path, *, proxy_group: str) -> ProxyFront:
    """Write ``proxy``'s main configuration in ``root`` around the site ``deployconfig`` wrote in ``site_dir``."""
    root.mkdir(exist_ok=True)
    if proxy == "nginx":
        return _nginx(site_dir, root)
    if proxy == "apache":
        return _apache(site_dir, root, proxy_group)
    if proxy == "caddy":
        return _caddy(site_dir, root)
    raise ValueError(f"proxy {proxy!r} is none of {PROXIES}")


def _nginx(site_dir: Path, root: Path) -> ProxyFront:
    prefix = NginxPrefix(root, shutil.which("nginx") or "nginx")
    prefix.write([site_dir / "nginx.conf"], worker_processes=1, worker_connections=8192, error_log_level="warn")
    return ProxyFront(prefix.serve_argv(), [*prefix.argv(), "-t", "-q"], [*prefix.argv(), "-s", "reload"])


def _apache(site_dir: Path, root: Path, proxy_group: str) -> ProxyFront:
    conf = check_conf(root, site_dir / "apache.conf")
    # Run by root, the children drop to User/Group: the proxy's group reaches the slots' sockets (socket_owner,
    # and the folders as INSTALL.md makes them).
    conf.write_text(conf.read_text() + f"TypesConfig /etc/mime.types\nUser nobody\nGroup {proxy_group}\n")
    apache2 = shutil.which("apache2") or "apache2"
    apachectl = [shutil.which("apachectl") or "apachectl", "-d", str(root), "-f", str(conf)]
    return ProxyFront([apache2, "-d", str(root), "-f", str(conf), "-DFOREGROUND"], [*apachectl, "-t"], [
        *apachectl, "-k", "graceful",
    ])  # fmt: skip


def _caddy(site_dir: Path, root: Path) -> ProxyFront:
    # The system Caddyfile's part: global options (the admin endpoint `caddy reload` posts to, on loopback; the
    # storage in this folder), then the site. The site's own addresses carry the port.
    main = root / "Caddyfile"
    main.write_text(
        f"{{\n\tadmin 127.0.0.1:{free_port()}\n\tskip_install_trust\n\n\thttps_port {free_port()}\n"
        f"\tstorage file_system {root}/data\n}}\n"
        f"import {site_dir / 'Caddyfile'}\n"
    )
    caddy = shutil.which("caddy") or "caddy"
    config = ["--config", str(main), "--adapter", "caddyfile"]
    env = {"HOME": str(root), "XDG_DATA_HOME": str(root), "XDG_CONFIG_HOME": str(root), "PATH": "/usr/bin:/bin"}
    return ProxyFront([caddy, "run", *config], [caddy, "validate", *config], [caddy, "reload", *config], env)
