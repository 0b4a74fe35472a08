"""Facts the plan takes from the machine it is built on, when the settings do not say."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess

_VERSION = re.compile(r"nginx version: [^/\s]+/(\d+)\.(\d+)\.(\d+)")


@functools.cache
def installed_nginx_version(binary: str = "nginx") -> tuple[int, ...] | None:
    """The version of the nginx on PATH (``nginx -v``), or None without one."""
    path = shutil.which(binary)
    if path is None:
        return None
    try:
        done = subprocess.run([path, "-v"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    found = _VERSION.search(done.stderr + done.stdout)
    return None if found is None else tuple(int(part) for part in found.groups())
