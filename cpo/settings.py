"""The effective settings: every key, its default, and the precedence that picks a value.

`cpo.config` reads the settings files into a `Settings` (repo file > user file > default,
each value with where it came from); the run engine and `cpo parallel` read it::

    settings.parallel.max_workers                  # effective value (repo > user > default)
    settings.backend("codex").model
    value, source = settings.resolve("parallel.max_workers", flag=..., task=..., manifest=...)

`resolve` applies the full precedence flag > task > manifest > repo config > user config >
default: the first of `flag`, `task`, `manifest` that is not None wins, otherwise the
files' value. `source` says where the value came from ("flag", "task", "manifest",
"repo config <path>", "user config <path>", "default"). Keys are dotted:
``parallel.max_workers``, ``timeouts.task``, ``backends.claude.model`` (see `KEYS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cpo.agents import backend_names
from cpo.logfile import DEFAULT_LOG_LIMIT


@dataclass(frozen=True)
class ParallelSettings:
    max_workers: int
    fail_fast: bool


@dataclass(frozen=True)
class TimeoutSettings:
    task: float | None
    idle: float | None


@dataclass(frozen=True)
class BackendSettings:
    model: str | None = None
    max_turns: int | None = None
    permission_mode: str | None = None
    approval_mode: str | None = None
    sandbox_mode: str | None = None
    extra_args: tuple[str, ...] = ()


BACKEND_KEYS = (
    "model",
    "max_turns",
    "permission_mode",
    "approval_mode",
    "sandbox_mode",
    "extra_args",
)

DEFAULTS: dict[str, object] = {
    "default_backend": "claude",
    # Stands for ../workspaces/<the repository's folder name> (cpo.run.layout).
    "workspace_root": "../workspaces/<repo folder name>",
    "parallel.max_workers": 3,
    "parallel.fail_fast": False,
    "timeouts.task": 7200.0,
    "timeouts.idle": None,
    "logs.max_size": DEFAULT_LOG_LIMIT,
    "server.api_keys": (),
    "worktree.include": (),
    "worktree.setup": (),
    "worktree.share": (),
    "ports.per_task": 10,
    "ports.first": 20000,
    "ports.last": 29999,
    "executors.ray.address": None,
    "executors.ray.gcs_address": None,
    "executors.ray.resources": {"agent_slot": 1.0},
    "executors.ray.env": (),
    "executors.ray.python": "python",
    # cpo.run.repair, cpo.run.nudge, cpo.plan.handoff, cpo.run.scopecheck
    "run.repair": 1,
    "run.nudges": 1,
    "run.handoff": True,
    "run.handoff_limit": 4000,
    "run.strict_scope": False,
    "run.on_conflict": "rerun",  # cpo.run.conflicts; README, "Merge conflicts": why
}
for _name in backend_names():
    for _key in BACKEND_KEYS:
        DEFAULTS[f"backends.{_name}.{_key}"] = () if _key == "extra_args" else None

KEYS = tuple(DEFAULTS)
DURATION_KEYS = ("timeouts.task", "timeouts.idle")
SECRET_KEYS = ("server.api_keys",)  # `cpo config show` says how many, never which


@dataclass(frozen=True)
class Settings:
    """Effective settings (files and defaults merged), with where each value came from."""

    values: Mapping[str, object]
    sources: Mapping[str, str]
    files: tuple[Path, ...] = ()
    warnings: tuple[str, ...] = ()
    backends: Mapping[str, BackendSettings] = field(default_factory=dict)

    @property
    def default_backend(self) -> str:
        return str(self.values["default_backend"])

    @property
    def workspace_root(self) -> str:
        return str(self.values["workspace_root"])

    @property
    def parallel(self) -> ParallelSettings:
        return ParallelSettings(
            max_workers=int(self.values["parallel.max_workers"]),  # type: ignore[call-overload]
            fail_fast=bool(self.values["parallel.fail_fast"]),
        )

    @property
    def api_keys(self) -> tuple[str, ...]:
        keys = self.values["server.api_keys"]
        return tuple(str(k) for k in keys) if isinstance(keys, tuple) else ()

    @property
    def timeouts(self) -> TimeoutSettings:
        task, idle = self.values["timeouts.task"], self.values["timeouts.idle"]
        return TimeoutSettings(
            task=float(task) if isinstance(task, (int, float)) else None,
            idle=float(idle) if isinstance(idle, (int, float)) else None,
        )

    @property
    def ports(self) -> tuple[int, int, int]:
        """(first, last, ports per task) of the blocks running tasks hold (cpo.run.ports)."""
        first, last, count = (self.values[f"ports.{k}"] for k in ("first", "last", "per_task"))
        return int(first), int(last), int(count)  # type: ignore[call-overload]

    def executor(self, name: str) -> dict[str, object]:
        """An executor's settings (`executors.<name>.*`), by key."""
        prefix = f"executors.{name}."
        return {k[len(prefix) :]: v for k, v in self.values.items() if k.startswith(prefix)}

    def backend(self, name: str) -> BackendSettings:
        return self.backends.get(name, BackendSettings())

    def resolve(
        self, key: str, *, flag: object = None, task: object = None, manifest: object = None
    ) -> tuple[Any, str]:
        """The value for `key` by precedence flag > task > manifest > repo > user > default."""
        if key not in self.values:
            raise KeyError(f"unknown setting {key!r}")
        for value, source in ((flag, "flag"), (task, "task"), (manifest, "manifest")):
            if value is not None:
                return value, source
        return self.values[key], self.sources[key]
