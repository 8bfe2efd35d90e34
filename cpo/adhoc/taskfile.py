"""The `cpo parallel` task file (clinvk's format): its models, parsing and checks.

``{"tasks": [{"backend": "codex", "prompt": "...", ...}], "max_parallel": 3,
"fail_fast": false, "output_dir": "results"}``; a bare list of tasks is accepted too.
Every problem is reported at once, one line each naming the file and the field; a
misspelt key is a did-you-mean warning.
"""

# No `from __future__ import annotations`: pydantic would compile and evaluate each
# field's string annotation as the models are built, at every start of cpo.

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cpo.agents import backend_names
from cpo.agents.modes import ApprovalMode, SandboxMode
from cpo.duration import Duration
from cpo.errors import UsageError
from cpo.suggest import did_you_mean


# -- the task file ----------------------------------------------------------------------
class AdhocTask(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    prompt: str = Field(min_length=1)
    backend: str | None = None
    model: str | None = None
    workdir: str | None = None
    worktree: bool = False
    approval_mode: ApprovalMode | None = None
    sandbox_mode: SandboxMode | None = None
    max_turns: int | None = Field(default=None, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)
    system_prompt: str | None = None
    extra: tuple[str, ...] = ()
    verbose: bool = False
    dry_run: bool = False
    id: str | None = None
    name: str | None = None
    tags: tuple[str, ...] = ()
    meta: dict[str, Any] = {}
    output_format: str | None = None
    command: str | None = None  # the `command` backend's shell command
    timeout: Duration | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str | None) -> str | None:
        if value is not None and value not in backend_names():
            hint = did_you_mean(value, backend_names())
            raise ValueError(
                f"unknown backend {value!r}{hint} (choose one of: {', '.join(backend_names())})"
            )
        return value


class AdhocFile(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    tasks: tuple[AdhocTask, ...] = Field(min_length=1)
    max_parallel: int | None = Field(default=None, ge=1)
    fail_fast: bool | None = None
    output_dir: str | None = None


@dataclass(frozen=True)
class AdhocPlan:
    file: AdhocFile
    raw_tasks: tuple[dict[str, Any], ...]  # as written, for output_dir/<task>.json
    source: str  # file name, or "<stdin>"
    warnings: tuple[str, ...] = ()


class TaskFileError(UsageError):
    """A task file that cannot be run: one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(problems[0] if problems else "invalid task file")

    def lines(self) -> list[str]:
        return list(self.problems)


_FILE_KEYS = list(AdhocFile.model_fields)
_TASK_KEYS = list(AdhocTask.model_fields)


def parse_task_file(text: str, source: str) -> AdhocPlan:
    """Parse and check a task file; every problem at once, one line each."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise TaskFileError([f"{source}: not valid JSON: {exc}"]) from None
    if isinstance(raw, list):  # a bare list of tasks is accepted too
        raw = {"tasks": raw}
    if not isinstance(raw, dict):
        raise TaskFileError([f'{source}: expected an object like {{"tasks": [...]}}'])
    warnings = [f"{source}: {w}" for w in _unknown_keys(raw)]
    try:
        parsed = AdhocFile.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            problems.append(f"{source}: {loc.lstrip('.')}: {msg}")
        # A misspelt key often explains a missing one: say both together.
        raise TaskFileError(problems + warnings) from None
    raw_tasks = tuple(t if isinstance(t, dict) else {} for t in raw.get("tasks", []))
    ids = [t.id for t in parsed.tasks if t.id]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise TaskFileError([f"{source}: tasks: duplicate id {d!r}" for d in dupes])
    if any(t.output_format for t in parsed.tasks):
        warnings.append(
            f"{source}: output_format is accepted and ignored: cpo reads each agent's "
            "JSON stream itself"
        )
    if any(t.max_tokens for t in parsed.tasks):
        warnings.append(
            f"{source}: max_tokens is accepted and ignored: none of the agent CLIs has such "
            "an option"
        )
    return AdhocPlan(parsed, raw_tasks, source, tuple(warnings))


def _unknown_keys(raw: Mapping[str, object]) -> list[str]:
    out = []
    for key in raw:
        if key not in _FILE_KEYS:
            out.append(f"{key}: not a task-file key, ignored{did_you_mean(key, _FILE_KEYS)}")
    tasks = raw.get("tasks")
    for i, task in enumerate(tasks if isinstance(tasks, list) else []):
        if isinstance(task, dict):
            for key in task:
                if key not in _TASK_KEYS:
                    out.append(
                        f"tasks[{i}].{key}: not a task key, ignored{did_you_mean(key, _TASK_KEYS)}"
                    )
    return out


def read_task_source(file: Path | None, stdin_text: Callable[[], str]) -> tuple[str, str]:
    """(text, source name) from the file, or from stdin when no file is given."""
    if file is None:
        return stdin_text(), "<stdin>"
    try:
        return file.read_text(encoding="utf-8"), str(file)
    except OSError as exc:
        raise UsageError(f"{file}: cannot be read: {exc.strerror or exc}") from None


__all__ = [
    "AdhocFile",
    "AdhocPlan",
    "AdhocTask",
    "TaskFileError",
    "parse_task_file",
    "read_task_source",
]
