"""Who may call the API and what it may touch: keys, the bind check, the roots.

Kept free of FastAPI so that `cpo serve` checks its settings (and says what is wrong in
one line) before anything listens.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cpo.errors import UsageError

KEYS_ENV = "CPO_API_KEYS"
LOOPBACK_NAMES = ("localhost",)


@dataclass(frozen=True)
class ServerConfig:
    host: str
    port: int
    roots: tuple[Path, ...]  # resolved, each an existing directory
    api_keys: tuple[str, ...]
    max_body_bytes: int = 1024 * 1024


def api_keys(env: Mapping[str, str], configured: Iterable[str]) -> tuple[str, ...]:
    """`CPO_API_KEYS` (comma-separated) when set, else the config file's `server.api_keys`."""
    raw = env.get(KEYS_ENV)
    keys = raw.split(",") if raw is not None else list(configured)
    return tuple(k.strip() for k in keys if k.strip())


def key_matches(given: str | None, keys: Iterable[str]) -> bool:
    """Constant-time against every key (no early exit), so timing says nothing."""
    if not given:
        return False
    found = False
    for key in keys:
        found |= hmac.compare_digest(given.encode(), key.encode())
    return found


def request_key(headers: Mapping[str, str]) -> str | None:
    """The key from `X-API-Key`, or from `Authorization: Bearer <key>` (clinvk's two)."""
    key = headers.get("x-api-key")
    if key:
        return key.strip()
    scheme, _, value = (headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_config(
    host: str, port: int, roots: Iterable[Path], keys: tuple[str, ...]
) -> ServerConfig:
    """The server's settings, or a UsageError saying (in one line) why it must not start."""
    if not keys and not is_loopback(host):
        raise UsageError(
            f"refusing to listen on {host} without an API key (anyone who can reach it could "
            f"run agents): set {KEYS_ENV} or server.api_keys in the config, "
            "or use --host 127.0.0.1"
        )
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port}: choose a port from 1 to 65535 (0: any free port)")
    resolved = []
    for root in roots or [Path.cwd()]:
        path = root.expanduser().resolve()
        if not path.is_dir():
            raise UsageError(f"--root {root}: not a directory")
        resolved.append(path)
    return ServerConfig(host, port, tuple(dict.fromkeys(resolved)), keys)


def inside_roots(path: str | os.PathLike[str], roots: Iterable[Path], *, base: Path) -> Path | None:
    """`path` (relative to `base`), symlinks followed, if it lies within one of `roots`."""
    resolved = (base / path).resolve()
    for root in roots:
        if resolved == root or resolved.is_relative_to(root):
            return resolved
    return None
