"""Which agent CLIs this machine has, and their versions (`GET /api/v1/backends`)."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

from cpo.agents import backend_names, get_backend
from cpo.agents.base import AgentRequest
from cpo.proc import run_capture
from cpo.serve.models import Backend

CACHE_SECONDS = 60.0  # a CLI's `--version` takes a second or more; installs are rare
VERSION_TIMEOUT = 10.0

_lock = threading.Lock()
_cache: tuple[float, list[Backend]] | None = None


def detect() -> list[Backend]:
    """Each backend: its executable found on PATH (or its CPO_<NAME>_BIN), and the first
    line of its `--version`. The `command` backend runs the user's command with /bin/sh."""
    global _cache
    with _lock:
        if _cache is not None and time.monotonic() - _cache[0] < CACHE_SECONDS:
            return _cache[1]
        probe = AgentRequest(
            task_id="-", wave=0, prompt="", worktree=Path("."), parallel_dir=Path(".")
        )
        found = []
        for name in backend_names():
            exe = get_backend(name).executable(probe)
            path = shutil.which(exe) if exe else None
            version = None
            if path is not None and name != "command":
                code, out, timed_out = run_capture(
                    [path, "--version"], cwd=Path.cwd(), timeout=VERSION_TIMEOUT
                )
                first = out.strip().splitlines()[0] if out.strip() else ""
                version = first if code == 0 and not timed_out and first else None
            found.append(Backend(name=name, available=path is not None, version=version, path=path))
        _cache = (time.monotonic(), found)
        return found
