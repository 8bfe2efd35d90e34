"""cpo's settings files: where they are, reading and checking them, merging them.

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

API (for the run engine, `cpo parallel`, `cpo serve` and `cpo config show`)::

    settings = load_settings(repo_root)            # or load_settings(None, cwd=...)
    rows = show_rows(settings)                     # (key, value, source) of each setting

What a `Settings` holds, the keys and the precedence with flags, task and manifest are
`cpo.settings`'s.

A value of the wrong type or out of range is an error naming the file and the field;
an unknown key is only a warning (with a did-you-mean), in `Settings.warnings`, because
a newer cpo's settings file must not break an older cpo.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from cpo.agents import backend_names
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
from cpo.settings import (
    BACKEND_KEYS,
    DEFAULTS,
    DURATION_KEYS,
    KEYS,
    SECRET_KEYS,
    BackendSettings,
    Settings,
)
from cpo.suggest import did_you_mean

REPO_CONFIG = Path(".cpo") / "config.yaml"


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
            **{k: values[f"backends.{name}.{k}"] for k in BACKEND_KEYS}  # type: ignore[arg-type]
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
                check(f"backends.{name}.", body, [*BACKEND_KEYS, "extra_flags"])
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
    "ConfigError",
    "find_repo_root",
    "load_settings",
    "show_rows",
    "user_config_path",
]
