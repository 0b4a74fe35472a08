"""What the validators share: running the real tool, and stand-in TLS certificates.

Certificates usually do not exist yet where configs are generated (certbot runs
after nginx is installed), but nginx, Apache and Caddy all load them while
checking. The check then uses a throwaway self-signed pair in its own temp dir;
everything else in the file is checked as written.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from deploykit.plan import Plan
from deploykit.targets.base import ToolMissing, ValidationFailed

#: Generous: a check is one short process; a hang must not hang the command.
TOOL_TIMEOUT = 60


def run_tool(argv: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run a validator; its combined output on success, ValidationFailed with that output on failure."""
    try:
        done = subprocess.run(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TOOL_TIMEOUT,
            check=False,
        )
    except FileNotFoundError as exc:
        raise ToolMissing(f"{argv[0]} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise ValidationFailed(f"{argv[0]} did not finish in {TOOL_TIMEOUT}s") from exc
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        raise ValidationFailed(output or f"{argv[0]} exited with status {done.returncode}")
    return output


def with_standin_certificates(plan: Plan, content: str, workdir: Path, quote: Callable[[str], str]) -> str:
    """``content`` with the plan's certificate paths, when missing here, replaced by a fresh self-signed pair."""
    tls = plan.site.tls
    if tls is None or tls.certificate is None or tls.certificate_key is None:
        return content
    if os.path.exists(tls.certificate) and os.path.exists(tls.certificate_key):
        return content
    cert, key = workdir / "standin-cert.pem", workdir / "standin-key.pem"
    if not cert.exists():
        run_tool(
            [
                "openssl", "req", "-x509", "-nodes", "-days", "1",
                "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-subj", f"/CN={plan.site.server_names[0].lstrip('*.')}",
                "-keyout", str(key), "-out", str(cert),
            ]
        )  # fmt: skip
    content = content.replace(quote(tls.certificate), quote(str(cert)))
    return content.replace(quote(tls.certificate_key), quote(str(key)))
