"""Agent backends, one module each, looked up by name (imported lazily).

`base` says what a backend is (the `Backend` protocol, request, events, outcome);
`claude`, `codex`, `gemini` and `command` are the backends; `common` holds what they
share (text, env filter, error classes, CLI preflight), `jsonsafe` their JSON access,
`modes` the neutral approval/sandbox modes, `modetable` the README table above them, and
`claude_agents` the `--agent` names Claude Code knows (for claude's preflight).
May import: `cpo.errors`, `cpo.suggest` (did-you-mean, a leaf), and `cpo.proc` (late, to
read a CLI's `--help`); never
`cpo.run`, `cpo.adhoc`, `cpo.config` or `cpo.cli*` (the command line).
"""

from __future__ import annotations

import importlib

from cpo.agents.base import Backend
from cpo.errors import UsageError

# name -> module; each module defines `BACKEND`, an object satisfying `Backend`.
_MODULES = {
    "claude": "cpo.agents.claude",
    "command": "cpo.agents.command",
    "codex": "cpo.agents.codex",
    "gemini": "cpo.agents.gemini",
}


def backend_names() -> list[str]:
    return list(_MODULES)


def get_backend(name: str) -> Backend:
    module_name = _MODULES.get(name)
    if module_name is None:
        raise UsageError(
            f"unknown backend {name!r}",
            hint=f"choose one of: {', '.join(_MODULES)}",
        )
    backend: Backend = importlib.import_module(module_name).BACKEND
    return backend
