"""cpo's settings files, and the precedence that picks each value.

Two YAML files, both optional:

- user-wide: ``$XDG_CONFIG_HOME/cpo/config.yaml`` (default ``~/.config/cpo/config.yaml``);
- per repository: ``<repo>/.cpo/config.yaml``.

::

    default_backend: claude
    workspace_root: ../worktrees              # default ../workspaces/<repo folder name>
    parallel: {max_workers: 3, fail_fast: false}
    timeouts: {task: 2h, idle: 15m}          # seconds, or a number with s/m/h
    logs: {max_size: 50MB}                   # per agent log file; bytes, or 500kB, 1GiB...
    server: {api_keys: [k1, k2]}             # `cpo serve`'s keys (CPO_API_KEYS wins)
    worktree: {include: [.env], setup: [npm ci], share: [node_modules]}  # cpo.run.ready
    ports: {per_task: 10, first: 20000, last: 29999}   # see cpo.run.ports
    run: {repair: 1, nudges: 1, handoff: true, handoff_limit: 4000, strict_scope: false,
          on_conflict: rerun}                # or resolve, stop
    backends:
      claude: {model: opus, max_turns: 80, permission_mode: acceptEdits}
      codex:  {model: gpt-5-codex, sandbox_mode: workspace, extra_args: [-c, foo=1]}

API (what the run engine and `cpo parallel` use)::

    settings = load_settings(repo_root)            # or load_settings(None, cwd=...)
    settings.parallel.max_workers                  # effective value (repo > user > default)
    settings.backend("codex").model
    value, source = settings.resolve("parallel.max_workers", flag=..., task=..., manifest=...)

`resolve` applies the full precedence flag > task > manifest > repo config > user config >
default: the first of `flag`, `task`, `manifest` that is not None wins, otherwise the
files' value. `source` says where the value came from ("flag", "task", "manifest",
"repo config <path>", "user config <path>", "default"). Keys are dotted:
``parallel.max_workers``, ``timeouts.task``, ``backends.claude.model`` (see `KEYS`).

A value of the wrong type or out of range is an error naming the file and the field;
an unknown key is only a warning (with a did-you-mean), in `Settings.warnings`, because
a newer cpo's settings file must not break an older cpo.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from cpo.agents import backend_names
from cpo.agents.modes import APPROVAL_MODES, SANDBOX_MODES
from cpo.configfile import (
    ConfigFile,
    LogsFile,
    ParallelFile,
    PortsFile,
    RayExecutorFile,
    RunFile,
    ServerFile,
    TimeoutsFile,
    WorktreeFile,
)
from cpo.duration import format_duration
from cpo.errors import UsageError
from cpo.logfile import DEFAULT_LOG_LIMIT
from cpo.suggest import did_you_mean

REPO_CONFIG = Path(".cpo") / "config.yaml"


# -- the effective settings ------------------------------------------------------------
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


_BACKEND_KEYS = (
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
    for _key in _BACKEND_KEYS:
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


class ConfigError(UsageError):
    """A settings file that cannot be used: one line per problem, naming file and field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(problems[0] if problems else "invalid settings file")

    def lines(self) -> list[str]:
        return list(self.problems)


def user_config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "cpo" / "config.yaml"


def find_repo_root(start: Path) -> Path | None:
    """The nearest directory at or above `start` holding `.git` (a dir, or a worktree's file)."""
    here = start.resolve()
    for d in (here, *here.parents):
        if (d / ".git").exists():
            return d
    return None


def load_settings(repo_root: Path | None, *, cwd: Path | None = None) -> Settings:
    """Read the user and repository settings files (both optional) and merge them."""
    if repo_root is None:
        repo_root = find_repo_root(cwd or Path.cwd())
    layers: list[tuple[str, Path]] = [("user config", user_config_path())]
    if repo_root is not None:
        layers.append(("repo config", repo_root / REPO_CONFIG))

    values = dict(DEFAULTS)
    sources = dict.fromkeys(DEFAULTS, "default")
    problems: list[str] = []
    warnings: list[str] = []
    files: list[Path] = []
    for label, path in layers:  # later layers win
        if not path.is_file():
            continue
        files.append(path)
        flat = _read_layer(path, problems, warnings)
        for key, value in flat.items():
            values[key] = value
            sources[key] = f"{label} {path}"
    first, last, count = (values[f"ports.{k}"] for k in ("first", "last", "per_task"))
    if int(first) + int(count) - 1 > int(last):  # type: ignore[call-overload]
        problems.append(
            f"ports: a block of {count} ports (ports.per_task) does not fit between "
            f"ports.first {first} and ports.last {last}"
        )
    if problems:
        raise ConfigError(problems)
    backends = {
        name: BackendSettings(
            **{k: values[f"backends.{name}.{k}"] for k in _BACKEND_KEYS}  # type: ignore[arg-type]
        )
        for name in backend_names()
    }
    return Settings(
        values=values,
        sources=sources,
        files=tuple(files),
        warnings=tuple(warnings),
        backends=backends,
    )


def _read_layer(path: Path, problems: list[str], warnings: list[str]) -> dict[str, object]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        problems.append(f"{path}: not valid YAML{where}: {problem}")
        return {}
    except OSError as exc:
        problems.append(f"{path}: cannot be read: {exc.strerror or exc}")
        return {}
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(f"{path}: expected a mapping of settings (key: value) at the top level")
        return {}
    warnings.extend(f"{path}: {w}" for w in _unknown_keys(raw))
    try:
        parsed = ConfigFile.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            got = err.get("input")
            shown = "" if isinstance(got, (dict, list)) else f" (got {got!r})"
            problems.append(f"{path}: {loc}: {msg}{shown}")
        return {}
    return _flatten(parsed)


def _flatten(parsed: ConfigFile) -> dict[str, object]:
    """Only the keys the file actually set, dotted."""
    flat: dict[str, object] = {}
    for key in ("default_backend", "workspace_root"):
        if key in parsed.model_fields_set:
            flat[key] = getattr(parsed, key)
    for section in ("parallel", "timeouts", "logs", "server", "worktree", "ports", "run"):
        sub: BaseModel = getattr(parsed, section)
        for key in sub.model_fields_set:
            value = getattr(sub, key)
            flat[f"{section}.{key}"] = tuple(value) if isinstance(value, tuple) else value
    for key in parsed.executors.ray.model_fields_set:
        value = getattr(parsed.executors.ray, key)
        flat[f"executors.ray.{key}"] = tuple(value) if isinstance(value, tuple) else value
    for name, backend in parsed.backends.items():
        if name not in backend_names():
            continue  # warned about as unknown
        for key in backend.model_fields_set:
            value = getattr(backend, key)
            flat[f"backends.{name}.{key}"] = tuple(value) if key == "extra_args" else value
    return flat


def _did_you_mean(key: str, known: list[str]) -> str:
    return did_you_mean(key, known) or f" (known: {', '.join(known)})"


def _unknown_keys(raw: Mapping[object, object]) -> list[str]:
    out: list[str] = []

    def check(where: str, data: Mapping[object, object], known: list[str]) -> None:
        for key in data:
            if str(key) not in known:
                out.append(f"{where}{key}: not a setting, ignored{_did_you_mean(str(key), known)}")

    check(
        "",
        raw,
        [
            "default_backend",
            "workspace_root",
            "parallel",
            "timeouts",
            "logs",
            "server",
            "worktree",
            "ports",
            "executors",
            "run",
            "backends",
        ],
    )
    sections = (
        ("parallel", ParallelFile),
        ("timeouts", TimeoutsFile),
        ("logs", LogsFile),
        ("server", ServerFile),
        ("worktree", WorktreeFile),
        ("ports", PortsFile),
        ("run", RunFile),
    )
    for section, model in sections:
        if isinstance(raw.get(section), dict):
            check(f"{section}.", raw[section], list(model.model_fields))  # type: ignore[arg-type]
    executors = raw.get("executors")
    if isinstance(executors, dict):
        check("executors.", executors, ["ray"])
        if isinstance(executors.get("ray"), dict):
            check("executors.ray.", executors["ray"], list(RayExecutorFile.model_fields))
    backends = raw.get("backends")
    if isinstance(backends, dict):
        for name, body in backends.items():
            if str(name) not in backend_names():
                out.append(
                    f"backends.{name}: not a backend, ignored"
                    + _did_you_mean(str(name), backend_names())
                )
                continue
            if isinstance(body, dict):
                check(f"backends.{name}.", body, [*_BACKEND_KEYS, "extra_flags"])
    return out


def show_rows(settings: Settings) -> list[tuple[str, object, str]]:
    """(key, value, source) for every setting, for `cpo config show`; unset backend keys
    are left out to keep the listing short. Values are shown as the file would write them
    (durations as `2h`, `15m`)."""
    rows: list[tuple[str, object, str]] = []
    for key in KEYS:
        value, source = settings.values[key], settings.sources[key]
        if key.startswith("backends.") and source == "default":
            continue
        if key in DURATION_KEYS and isinstance(value, (int, float)):
            value = format_duration(value)
        if key in SECRET_KEYS and isinstance(value, tuple):
            value = f"{len(value)} key(s), not shown"
        rows.append((key, list(value) if isinstance(value, tuple) else value, source))
    return rows


__all__ = [
    "APPROVAL_MODES",
    "KEYS",
    "SANDBOX_MODES",
    "BackendSettings",
    "ConfigError",
    "Settings",
    "find_repo_root",
    "load_settings",
    "show_rows",
    "user_config_path",
]
