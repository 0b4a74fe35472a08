"""Allowlist validators: every value that can reach a config file passes one.

Each validator takes the value and the name of the setting it came from, and
returns the normalised value or raises :class:`SpecError` naming that setting.
They accept only what is known to be inert in every format deploykit writes
(nginx, Apache, Caddy, systemd, supervisor ini, shell, YAML, Python); values
that must carry arbitrary text (environment values) are quoted per format
instead, see :mod:`deploykit.quoting`.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from deploykit.exceptions import SpecError

#: The kernel's sun_path is 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107
#: Longer paths are refused: every format deploykit writes holds this much in one argument.
MAX_PATH = 1024
#: An environment value longer than this is refused (a sane bound, far below any format's line limit).
MAX_ENV_VALUE = 32768

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME_RE = re.compile(rf"^(?:\*\.|\.)?{_LABEL}(?:\.{_LABEL})*\.?$")
# Characters allowed in a filesystem path that reaches a config file: no
# whitespace, quotes, `$`, `%`, `;`, braces, backslash, `:` or control chars.
_PATH_RE = re.compile(r"^/[A-Za-z0-9._+@=,/-]*$")
_URL_PATH_RE = re.compile(r"^/(?:[A-Za-z0-9._~+@=,-]+/)*$")
_IDENT_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_DOTTED_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# No quote, `#`, `$`, whitespace or backslash; `%` only as a %XX escape.
_URL_SAFE_RE = re.compile(r"^(?:[A-Za-z0-9._~:/?\[\]@!&()*+,=-]|%[0-9A-Fa-f]{2})*$")


def _fail(setting: str, value: Any, reason: str) -> SpecError:
    return SpecError(setting, value, reason)


def integer(value: Any, setting: str, *, minimum: int = 0, maximum: int = 2**31 - 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(setting, value, "must be an integer")
    if not minimum <= value <= maximum:
        raise _fail(setting, value, f"must be between {minimum} and {maximum}")
    return value


def port(value: Any, setting: str) -> int:
    return integer(value, setting, minimum=1, maximum=65535)


def boolean(value: Any, setting: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(setting, value, "must be True or False")
    return value


def choice(value: Any, setting: str, choices: Iterable[str]) -> str:
    options = tuple(choices)
    if not isinstance(value, str) or value not in options:
        raise _fail(setting, value, f"must be one of {', '.join(options)}")
    return value


def _printable(value: str, setting: str) -> str:
    # Line breaks of any kind (also U+0085, U+2028), NUL and other control
    # characters end or corrupt a line in every format; a lone surrogate
    # cannot even be written as UTF-8. Tab is the one control character kept.
    if any(c != "\t" and unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in value):
        raise _fail(setting, value, "must not contain line breaks, NUL or other control characters")
    return value


def _string(value: Any, setting: str) -> str:
    if not isinstance(value, str):
        raise _fail(setting, value, "must be a string")
    if not value:
        raise _fail(setting, value, "must not be empty")
    return _printable(value, setting)


def _ip(text: str) -> str:
    """An IP address; ValueError also for an IPv6 zone (``fe80::1%eth0``), which is free text."""
    if "%" in text:
        raise ValueError(text)
    return str(ipaddress.ip_address(text))


def hostname(value: Any, setting: str) -> str:
    """A server name: DNS name (optionally ``*.`` or ``.`` prefixed) or IP address."""
    text = _string(value, setting)
    try:
        return _ip(text.strip("[]"))
    except ValueError:
        pass
    lowered = text.lower()
    if len(lowered) > 253 or not _HOSTNAME_RE.fullmatch(lowered):
        raise _fail(setting, value, "is not a valid host name or IP address")
    return lowered


def ip_or_network(value: Any, setting: str) -> str:
    text = _string(value, setting)
    if text == "*":
        return text
    try:
        if "/" not in text:
            return _ip(text)
        if "%" in text:
            raise ValueError(text)
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise _fail(setting, value, "is not an IP address, a network or '*'") from None


def absolute_path(value: Any, setting: str) -> str:
    """An absolute filesystem path made of inert characters, without ``..``."""
    text = _string(value, setting)
    if not text.startswith("/"):
        raise _fail(setting, value, "must be an absolute path")
    if not _PATH_RE.fullmatch(text):
        raise _fail(
            setting,
            value,
            "may contain only letters, digits and . _ + @ = , / - (no spaces, quotes, "
            "$, %, ;, :, braces, backslashes or control characters)",
        )
    if any(part == ".." for part in text.split("/")):
        raise _fail(setting, value, "must not contain '..'")
    if len(text) > MAX_PATH:
        # nginx refuses a longer argument ("too long parameter"), Apache a longer line.
        raise _fail(setting, value, f"is longer than {MAX_PATH} characters")
    if len(text) > 1 and text.endswith("/"):
        text = text.rstrip("/")
    return text


def socket_path(value: Any, setting: str) -> str:
    text = absolute_path(value, setting)
    if len(text.encode()) > MAX_SOCKET_PATH:
        raise _fail(setting, value, f"is longer than the kernel's {MAX_SOCKET_PATH}-byte socket path limit")
    return text


def identifier(value: Any, setting: str) -> str:
    """A user, group or service name (POSIX portable, lower case)."""
    text = _string(value, setting)
    if not _IDENT_RE.fullmatch(text):
        raise _fail(setting, value, "must match [a-z_][a-z0-9_-]{0,31}")
    return text


def dotted_path(value: Any, setting: str) -> str:
    text = _string(value, setting)
    if not _DOTTED_RE.fullmatch(text):
        raise _fail(setting, value, "must be a dotted Python path")
    return text


def url_path(value: Any, setting: str) -> str:
    """A URL path prefix such as STATIC_URL: starts and ends with '/', no '.' or '..' segment."""
    text = _string(value, setting)
    if len(text) > MAX_PATH:
        # nginx refuses a longer argument ("too long parameter"); Apache's location regex fails.
        raise _fail(setting, value, f"is longer than {MAX_PATH} characters")
    if not _URL_PATH_RE.fullmatch(text):
        raise _fail(setting, value, "must be a path like /static/ made of URL-safe characters")
    if any(part in (".", "..") for part in text.split("/")):
        # Clients normalise them away: a location with them never matches.
        raise _fail(setting, value, "must not contain '.' or '..' segments")
    return text


def root_path(value: Any, setting: str) -> str:
    """A sub-path such as FORCE_SCRIPT_NAME: '' or '/prefix' (no trailing slash)."""
    if value in (None, "", "/"):
        return ""
    text = _string(value, setting).rstrip("/")
    url_path(text + "/", setting)
    return text


def env_name(value: Any, setting: str) -> str:
    text = _string(value, setting)
    if not _ENV_NAME_RE.fullmatch(text):
        raise _fail(setting, value, "must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)")
    return text


def env_value(value: Any, setting: str) -> str:
    """Any printable text: quoted per format later; line breaks and NUL can't be."""
    if not isinstance(value, str):
        raise _fail(setting, value, "must be a string")
    if len(value) > MAX_ENV_VALUE:
        raise _fail(setting, value, f"is longer than {MAX_ENV_VALUE} characters")
    return _printable(value, setting)


def redis_url(value: Any, setting: str) -> str:
    text = _string(value, setting)
    if not _URL_SAFE_RE.fullmatch(text):
        raise _fail(setting, value, "contains characters that are not allowed in a URL")
    parts = urlsplit(text)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise _fail(setting, value, "must be a redis://, rediss:// or unix:// URL")
    if parts.scheme == "unix":
        socket_path(parts.path, setting)
    elif not parts.hostname:
        raise _fail(setting, value, "must name a host")
    return text


def host_port(value: Any, setting: str) -> tuple[str, int]:
    """'host:port', '[v6]:port' or ':port' / 'port' (meaning 127.0.0.1)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return "127.0.0.1", port(value, setting)
    text = _string(value, setting)
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
    if not (port_text.isascii() and port_text.isdigit()):
        raise _fail(setting, value, "must be HOST:PORT")
    number = int(port_text)
    if not 1 <= number <= 65535:
        raise _fail(setting, value, "has a port outside 1-65535")
    if not host:
        return "127.0.0.1", number
    if host.startswith("["):
        if not host.endswith("]"):
            raise _fail(setting, value, "must be HOST:PORT")
        host = host[1:-1]
    try:
        return _ip(host), number
    except ValueError:
        pass
    if host.startswith((".", "*")):
        raise _fail(setting, value, "must be HOST:PORT")
    try:
        return hostname(host, setting), number
    except SpecError as exc:
        raise _fail(setting, value, f"has an invalid host: {exc.reason}") from None


# Container images and Kubernetes names. Grammars:
# https://github.com/distribution/reference/blob/main/reference.go and
# https://kubernetes.io/docs/concepts/overview/working-with-objects/names/
_IMAGE_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_REGISTRY_RE = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]{1,5})?$"
)
_IMAGE_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_DNS_LABEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_QUANTITY_RE = re.compile(r"^[0-9]+(?:\.[0-9]+)?(?:m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_RELATIVE_PATH_RE = re.compile(r"^[A-Za-z0-9._+@=,-]+(?:/[A-Za-z0-9._+@=,-]+)*$")


def image_name(value: Any, setting: str) -> str:
    """A container image repository, ``[registry[:port]/]path`` without tag: ``ghcr.io/acme/chat``."""
    text = _string(value, setting)
    parts = text.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        if not _REGISTRY_RE.fullmatch(parts[0]):
            raise _fail(setting, value, "has an invalid registry host")
        parts = parts[1:]
    if len(text) > 255 or not all(_IMAGE_COMPONENT_RE.fullmatch(p) for p in parts):
        raise _fail(setting, value, "must be an image name: lower-case [registry/]path/name, without a tag")
    return text


def image_tag(value: Any, setting: str) -> str:
    text = _string(value, setting)
    if not _IMAGE_TAG_RE.fullmatch(text):
        raise _fail(setting, value, "must be an image tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})")
    return text


def image_reference(value: Any, setting: str) -> str:
    """``name:tag`` or ``name@sha256:...`` (a base image must be pinned, never implicitly ``latest``)."""
    text = _string(value, setting)
    name, at, digest = text.partition("@")
    if at:
        if not _DIGEST_RE.fullmatch(digest):
            raise _fail(setting, value, "has an invalid digest (sha256:<64 hex>)")
        image_name(name, setting)
        return text
    name, colon, tag = text.rpartition(":")
    if not colon or "/" in tag:
        raise _fail(setting, value, "must name a tag or digest, e.g. python:3.12-slim-bookworm")
    image_name(name, setting)
    image_tag(tag, setting)
    return text


def dns_label(value: Any, setting: str) -> str:
    """A Kubernetes namespace or object name (RFC 1123 label)."""
    text = _string(value, setting)
    if not _DNS_LABEL_RE.fullmatch(text):
        raise _fail(setting, value, "must be a DNS label: lower-case letters, digits and '-', at most 63")
    return text


_VERSION_RE = re.compile(r"^[0-9]{1,4}(?:\.[0-9]{1,4}){1,3}$")


def version(value: Any, setting: str) -> tuple[int, ...]:
    """A program version such as ``1.26.2``."""
    text = _string(value, setting)
    if not _VERSION_RE.fullmatch(text):
        raise _fail(setting, value, "must be a version such as 1.26.2")
    return tuple(int(part) for part in text.split("."))


def quantity(value: Any, setting: str) -> str:
    """A Kubernetes resource quantity such as ``250m``, ``1``, ``512Mi``."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else _string(value, setting)
    if not _QUANTITY_RE.fullmatch(text):
        raise _fail(setting, value, "must be a Kubernetes quantity such as 250m, 1, 512Mi")
    return text


def relative_path(value: Any, setting: str) -> str:
    """A path inside the project (the Docker build context): relative, inert characters, no '..'."""
    text = _string(value, setting)
    if not _RELATIVE_PATH_RE.fullmatch(text) or any(part in (".", "..") for part in text.split("/")):
        raise _fail(setting, value, "must be a relative path inside the project, without '..'")
    if text.startswith("-"):
        # It lands in argv positions (COPY, pip install -r): '--help' would be read as an option.
        raise _fail(setting, value, "must not start with '-'")
    return text


_META_HEADER_RE = re.compile(r"^HTTP_[A-Z0-9]+(?:_[A-Z0-9]+)*$")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9.~+_-]+$")


def meta_header(value: Any, setting: str) -> str:
    """A request header as Django names it in ``request.META``: ``HTTP_X_FORWARDED_PROTO``."""
    text = _string(value, setting)
    if not _META_HEADER_RE.fullmatch(text):
        raise _fail(setting, value, "must be a request.META header name such as HTTP_X_FORWARDED_PROTO")
    return text


def token(value: Any, setting: str) -> str:
    """A short header value such as ``https``: letters, digits and . ~ + _ -."""
    text = _string(value, setting)
    if not _TOKEN_RE.fullmatch(text):
        raise _fail(setting, value, "may contain only letters, digits and . ~ + _ -")
    return text


_ARGUMENT_RE = re.compile(r"^[A-Za-z0-9._,:=/@+-]+$")


def argument(value: Any, setting: str) -> str:
    """One word of a command line that every format holds unquoted and unexpanded (no %, $, spaces, quotes)."""
    text = _string(value, setting)
    if not _ARGUMENT_RE.fullmatch(text):
        raise _fail(setting, value, "may contain only letters, digits and . _ , : = / @ + -")
    return text
