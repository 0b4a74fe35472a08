"""The stacks under test, each started on loopback / unix sockets in a temp dir.

Every stack serves the same Django project (``testproject.production``,
DEBUG off, Redis channel layer) except (e), the bare ASGI app. The proxy
blocks are the generated file (a) or the seed documents' text (b, c),
verbatim but for the addresses; the wrapper nginx.conf around them
(deploykit.nginxprefix) only moves nginx's own files into the temp dir so it
runs unprivileged.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import ProcessSet, wait_http, wait_unix
from deploykit.nginxprefix import NginxPrefix
from tests.procs import PYTHON, REPO, Proc, RedisServer, free_port, manage

NGINX = "/usr/sbin/nginx"
REDIS = "/usr/bin/redis-server"
DJANGO_PATH = "/whoami/"
#: The realistic page (issue 15): signed-in session, one query, a template.
PAGE_PATH = "/account/"
HELLO_PATH = "/"
HELLO_TARGET = "bench.hello:app"
#: The processes per stack: one per core, as every doc recommends.
CORES = os.cpu_count() or 1

#: Around every stack's server file (deploykit.nginxprefix puts nginx's own files
#: in the temp prefix, so it runs unprivileged), Debian's stock nginx.conf
#: settings: worker_processes auto, these http{} directives, an access log.
#: worker_connections is raised from Debian's 768 for every stack alike: 1000
#: proxied WebSockets take 2000 connections.
DEBIAN_WORKER_PROCESSES = "auto"
DEBIAN_HTTP = ("sendfile on", "tcp_nopush on", "types_hash_max_size 2048")
WORKER_CONNECTIONS = 4096

#: Seed 001, the Channels "Deploying" doc (Nginx/Supervisor), as written; the
#: doc's "..." in server{} is filled with a listen and a server_name only.
CHANNELS_DOCS_SITE = """\
upstream channels-backend {{
    server localhost:{backend_port};
}}
server {{
    listen 127.0.0.1:{port};
    server_name localhost;
    location / {{
        try_files $uri @proxy_to_app;
    }}
    location @proxy_to_app {{
        proxy_pass http://channels-backend;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
        proxy_redirect off;
        proxy_set_header Host $host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Host $server_name;
    }}
}}
"""

#: Seed 000, uMap's ASGI doc, as written (the map with '' close, buffering
#: off, no proxy_http_version); only the socket path and the listen differ.
UMAP_DOCS_SITE = """\
map $http_upgrade $connection_upgrade {{
    default upgrade;
    '' close;
}}
server {{
    listen 127.0.0.1:{port};
    server_name localhost;
    location / {{
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_redirect off;
        proxy_buffering off;
        proxy_pass http://unix:{socket}:/;
    }}
}}
"""


@dataclass
class Stack:
    key: str
    label: str
    port: int
    path: str
    procs: list[Proc] = field(default_factory=list)
    #: How it was built, for the JSON (argv, config files).
    detail: dict[str, object] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


class Lab:
    """The temp dir, Redis, and every process started in it."""

    def __init__(self, tmp: Path, procs: ProcessSet) -> None:
        self.tmp = tmp
        self.procs = procs
        self.redis = RedisServer(tmp / "redis")
        self.redis_url = self.redis.url
        (tmp / "static").mkdir(exist_ok=True)

    # -- shared pieces -------------------------------------------------------

    def start_redis(self) -> None:
        self.redis.workdir.mkdir()
        self.redis.start()
        assert self.redis.proc is not None
        self.procs.adopt(self.redis.proc)

    def django_env(self, settings: str = "testproject.production", **extra: str) -> dict[str, str]:
        """The deployed settings' environment (what ``deployconfig env`` writes), plus loopback knobs."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DEPLOYKIT_", "DJANGO_", "UVICORN_", "BENCH_"))}
        env.update(
            DJANGO_SETTINGS_MODULE=settings,
            DJANGO_SECRET_KEY="bench-" + "k" * 50,
            ALLOWED_HOSTS="127.0.0.1,localhost",
            REDIS_URL=self.redis_url,
            STATIC_ROOT=str(self.tmp / "static"),
            # A loopback stack has no certificate: plain HTTP, like the seeds' blocks.
            DEPLOYKIT_TLS="off",
            DEPLOYKIT_LISTEN_ADDRESS="127.0.0.1",
            # One SQLite database for every stack (the realistic page reads it), never the repository's.
            DEMO_DATABASE=str(self.tmp / "db.sqlite3"),
            PYTHONPATH=str(REPO),
        )
        env.update(extra)
        return env

    def print_command(self, env: dict[str, str]) -> list[str]:
        """runasgi's printed argv; the NAME=value words before it (the server's contract environment, as the
        units write it) go into ``env``."""
        argv = shlex.split(manage(env, "runasgi", "--print-command").strip())
        while argv and "=" in argv[0] and not argv[0].startswith(("/", "-")):
            name, _, value = argv.pop(0).partition("=")
            env[name] = value
        return argv

    def start_nginx(self, key: str, site_text: str, port: int, path: str, expect: bytes, backends: list[Proc]) -> Proc:
        prefix = NginxPrefix(self.tmp / f"{key}-nginx", NGINX)
        prefix.root.mkdir(exist_ok=True)
        site = prefix.root / "site.conf"
        site.write_text(site_text, encoding="utf-8")
        prefix.write(
            [site],
            worker_processes=DEBIAN_WORKER_PROCESSES,
            worker_connections=WORKER_CONNECTIONS,
            http=DEBIAN_HTTP,
            access_log_format="combined",
        )
        test = subprocess.run(prefix.test_argv(), capture_output=True, text=True, timeout=30)
        if test.returncode != 0:
            raise RuntimeError(f"nginx -t rejected {key}'s site:\n{test.stderr}\n{site_text}")
        proc = self.procs.start(f"{key}-nginx", prefix.serve_argv(), env=os.environ, log_dir=prefix.root)
        wait_http([proc, *backends], port, path, expect=expect)
        return proc

    def generate_nginx(self, env: dict[str, str], out: Path) -> tuple[str, list[str]]:
        """``manage.py deployconfig nginx`` with the recommended defaults: (file text, argv)."""
        argv = ["deployconfig", "nginx", "--output", str(out)]
        manage(env, *argv)
        return out.read_text(encoding="utf-8"), ["manage.py", *argv]

    def start_server(self, name: str, argv: list[str], env: dict[str, str], **kwargs: object) -> Proc:
        d = self.tmp / name
        d.mkdir(exist_ok=True)
        return self.procs.start(name, argv, env=env, log_dir=d, **kwargs)

    def signed_in_cookie(self) -> str:
        """Migrate the shared database, create the users, return a signed-in session's Cookie header value."""
        env = self.django_env()
        manage(env, "migrate", "--noinput", "-v0")
        said = manage(env, "shell", "-c", (REPO / "bench" / "session.py").read_text())
        return next(line.split(" ", 1)[1] for line in said.splitlines() if line.startswith("COOKIE "))

    # -- the stacks ----------------------------------------------------------

    def split(self, key: str, wsgi: str) -> Stack:
        """Split serving (issue 15): ``deployconfig nginx`` + ``runasgi --role http`` + ``--role websocket``."""
        d = self.tmp / key
        d.mkdir(exist_ok=True)
        d.chmod(0o750)
        port = free_port()
        sock = str(d / "app.sock")
        env = self.django_env(
            DEPLOYKIT_SOCKET=sock,
            DEPLOYKIT_RUNTIME_DIRECTORY=str(d),
            DEPLOYKIT_HTTP_PORT=str(port),
            DEPLOYKIT_WSGI_SERVER=wsgi,
        )
        site_text, gen_argv = self.generate_nginx(env, d / "generated-nginx.conf")
        printed = manage(env, "runasgi", "--print-command")
        servers = []
        # Not named KEY-http: that is the WSGI side's runtime directory (below).
        for role, name in (("http", "wsgi"), ("websocket", "asgi")):
            servers.append(self.start_server(f"{key}-{name}", [PYTHON, "manage.py", "runasgi", "--role", role], env))
        # The plan's WSGI socket: RUNTIME_DIRECTORY-http/NAME-http.sock.
        wait_unix(f"{d}-http/testproject-http.sock", servers[0])
        wait_unix(sock, servers[1])
        nginx = self.start_nginx(key, site_text, port, DJANGO_PATH, b'"pid"', servers)
        return Stack(key, "", port, DJANGO_PATH, [nginx, *servers], {"generate": gen_argv, "print_command": printed})

    def deploykit(self, key: str = "a", *, target: str | None = None) -> Stack:
        """(a): ``deployconfig nginx`` + ``runasgi``; with ``target``, that app in runasgi's argv (e)."""
        d = self.tmp / key
        d.mkdir(exist_ok=True)
        # As systemd's RuntimeDirectoryMode=0750: runasgi refuses a socket that other
        # users can reach while it trusts X-Forwarded-* from every peer on it.
        d.chmod(0o750)
        port = free_port()
        sock = str(d / "app.sock")
        env = self.django_env(DEPLOYKIT_SOCKET=sock, DEPLOYKIT_HTTP_PORT=str(port))
        site_text, gen_argv = self.generate_nginx(env, d / "generated-nginx.conf")
        if target is None:
            argv = [PYTHON, "manage.py", "runasgi"]
            path, expect = DJANGO_PATH, b'"pid"'
        else:
            argv = [target if a.endswith(":application") else a for a in self.print_command(env)]
            path, expect = HELLO_PATH, b"hello"
        server = self.start_server(f"{key}-server", argv, env)
        wait_unix(sock, server)
        nginx = self.start_nginx(key, site_text, port, path, expect, [server])
        return Stack(
            key,
            "",
            port,
            path,
            [nginx, server],
            {"generate": gen_argv, "server_argv": argv, "nginx_site": site_text},
        )

    def direct(
        self,
        key: str,
        *,
        by_hand: bool = False,
        target: str | None = None,
        settings: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> Stack:
        """(d): runasgi's server on TCP, no proxy; ``by_hand``: its printed argv run without runasgi."""
        port = free_port()
        env = self.django_env(
            settings or "testproject.production", DEPLOYKIT_BIND=f"127.0.0.1:{port}", **(extra_env or {})
        )
        path, expect = DJANGO_PATH, b'"pid"'
        if by_hand or target is not None:
            argv = self.print_command(env)
            if target is not None:
                argv = [target if a.endswith(":application") else a for a in argv]
                path, expect = HELLO_PATH, b"hello"
        else:
            argv = [PYTHON, "manage.py", "runasgi"]
        server = self.start_server(f"{key}-server", argv, env)
        wait_http([server], port, path, expect=expect)
        return Stack(key, "", port, path, [server], {"server_argv": argv})

    def channels_docs(self, key: str = "b") -> Stack:
        """(b): two daphne processes sharing one TCP socket (supervisor fcgi-program's fd 0) behind seed 001."""
        d = self.tmp / key
        d.mkdir(exist_ok=True)
        backend_port, port = free_port(), free_port()
        # What supervisor does for [fcgi-program:asgi] socket=tcp://localhost:8000:
        # bind, listen, and hand the socket to every process as fd 0.
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", backend_port))
        listener.listen(socket.SOMAXCONN)
        env = self.django_env()
        servers = []
        argvs = []
        try:
            for num in range(CORES):
                argv = [str(REPO / ".venv" / "bin" / "daphne"), "-u", str(d / f"daphne{num}.sock"), "--fd", "0"]
                argv += ["--access-log", "-", "--proxy-headers", "testproject.asgi:application"]
                argvs.append(argv)
                servers.append(self.start_server(f"{key}-daphne{num}", argv, env, stdin=listener.fileno()))
        finally:
            listener.close()
        for num, server in enumerate(servers):
            wait_unix(str(d / f"daphne{num}.sock"), server)
        site_text = CHANNELS_DOCS_SITE.format(backend_port=backend_port, port=port)
        nginx = self.start_nginx(key, site_text, port, DJANGO_PATH, b'"pid"', servers)
        return Stack(key, "", port, DJANGO_PATH, [nginx, *servers], {"server_argv": argvs, "nginx_site": site_text})

    def umap_docs(self, key: str = "c") -> Stack:
        """(c): uvicorn on a unix socket, UVICORN_WORKERS = cores, behind seed 000's block."""
        d = self.tmp / key
        d.mkdir(exist_ok=True)
        port = free_port()
        sock = str(d / "umap.sock")
        env = self.django_env(UVICORN_WORKERS=str(CORES))
        argv = [str(REPO / ".venv" / "bin" / "uvicorn"), "--proxy-headers", "--uds", sock, "--no-access-log"]
        argv += ["testproject.asgi:application"]
        server = self.start_server(f"{key}-server", argv, env)
        wait_unix(sock, server)
        site_text = UMAP_DOCS_SITE.format(port=port, socket=sock)
        nginx = self.start_nginx(key, site_text, port, DJANGO_PATH, b'"pid"', [server])
        return Stack(
            key,
            "",
            port,
            DJANGO_PATH,
            [nginx, server],
            {"server_argv": argv, "env": {"UVICORN_WORKERS": str(CORES)}, "nginx_site": site_text},
        )


def layer_configs(lab: Lab) -> dict[str, dict[str, object]]:
    """CONFIG (minus hosts) for the broadcast: ``deployconfig channels`` output vs channels_redis's defaults."""
    generated: dict[str, Any] = {}
    # The generated settings snippet, as a user pastes it.
    exec(manage(lab.django_env(), "deployconfig", "channels"), generated)
    config = dict(generated["CHANNEL_LAYERS"]["default"]["CONFIG"])
    config.pop("hosts")
    return {"deploykit": config, "channels_redis defaults": {}}
