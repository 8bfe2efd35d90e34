"""The checked plan: frozen, typed objects that every command after loading works on.

`manifest.load_plan` builds these from the user's files; nothing downstream sees raw
dicts or pydantic models.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cpo.errors import Problem
from cpo.plan.names import task_branch

ValidationKind = Literal["python", "shell"]
# How task branches are named (manifest key `branch_names`): "spec" puts the spec id in
# them, `feature/<spec>/<id>`, so that two specs numbering their tasks from task-001 never
# collide; "plain" is the seed's `feature/<id>`.
BranchNames = Literal["spec", "plain"]
# What `cpo run` does when a task's merge into the integration branch conflicts (manifest
# `on_conflict`, --on-conflict, config `run.on_conflict`; cpo.run.conflicts).
OnConflict = Literal["rerun", "resolve", "stop"]


@dataclass(frozen=True)
class ValidationStep:
    """One validation command of a wave: Python source or a shell command line."""

    kind: ValidationKind
    source: str


@dataclass(frozen=True)
class ScopeEntry:
    """A path in a task's Scope section; `symbol` is the ``::Name`` part of a scoped MODIFY."""

    action: Literal["CREATE", "MODIFY", "BOUNDARY"]
    path: str
    symbol: str | None = None


@dataclass(frozen=True)
class TaskSpec:
    id: str
    wave: int
    prompt: str
    prompt_source: str  # relative path of the prompt file, or "<task-file> (body)"
    component: str | None = None
    deps: tuple[str, ...] = ()
    agent: str | None = None
    backend: str | None = None
    model: str | None = None
    timeout: float | None = None
    estimate: float | None = None  # seconds; orders launches only (cpo.run.priority)
    max_turns: int | None = None
    permission_mode: str | None = None
    approval_mode: str | None = None  # backend-neutral (cpo.agents.modes)
    sandbox_mode: str | None = None
    task_file: str | None = None  # relative to the parallel directory
    contracts: tuple[str, ...] = ()
    skills: tuple[str, ...] = ()
    scope: tuple[ScopeEntry, ...] = ()
    env: tuple[tuple[str, str], ...] = ()  # its own `env:` (cpo.run.taskenv)
    setup: tuple[str, ...] = ()  # its own setup commands, after the spec's (cpo.run.ready)
    # The folders its sparse checkout holds (cpo.plan.scope.sparse_folders); None: all.
    sparse: tuple[str, ...] | None = None
    # sha256 of everything that defines the task's work (task file, prompt, options);
    # resume re-runs a task whose hash changed since it ran.
    content_hash: str = ""
    # The task branch, named by the loader (cpo.plan.names.task_branch); a continued run
    # keeps the names its report recorded (cpo.run.layout). Empty: the plain form.
    branch: str = ""
    # Its worktree's folder under the spec's; empty: the task id. The tasks of a plan
    # file's stream share one (cpo.planfile.translate).
    worktree: str = ""

    def __post_init__(self) -> None:
        if not self.branch:
            object.__setattr__(self, "branch", task_branch(None, self.id, self.component))


@dataclass(frozen=True)
class WaveSpec:
    number: int
    task_ids: tuple[str, ...]  # in manifest order: the merge order
    validation: tuple[ValidationStep, ...] = ()


@dataclass(frozen=True)
class Plan:
    root: Path  # the parallel directory, absolute
    spec_id: str
    waves: tuple[WaveSpec, ...]
    tasks: Mapping[str, TaskSpec]  # insertion order = manifest order
    name: str | None = None
    technology: str | None = None
    max_parallel: int | None = None
    manifest_style: Literal["cpo", "legacy", "none"] = "cpo"
    branch_names: BranchNames = "spec"
    setup: tuple[str, ...] | None = None  # the manifest's `setup`; None: not set there
    include: tuple[str, ...] = ()  # the manifest's `worktree_include` patterns
    share: tuple[str, ...] = ()  # the manifest's `share` folders
    env: tuple[tuple[str, str], ...] = ()  # the manifest's `env:` (cpo.run.taskenv)
    warnings: tuple[Problem, ...] = field(default=())
    # The manifest's repair, nudges, handoff, handoff_limit, strict_scope, on_conflict
    # (None: not set).
    run_keys: Mapping[str, object] = field(default_factory=dict)

    @property
    def integration_branch(self) -> str:
        return f"integration/{self.spec_id}"

    def wave_of(self, task_id: str) -> WaveSpec:
        number = self.tasks[task_id].wave
        return next(w for w in self.waves if w.number == number)

    def ordered_tasks(self) -> list[TaskSpec]:
        """Tasks wave by wave, each wave in manifest order."""
        return [self.tasks[t] for w in self.waves for t in w.task_ids]

    def dependents(self) -> dict[str, list[str]]:
        """Task id -> the ids of the tasks that depend on it, in manifest order."""
        result: dict[str, list[str]] = {t: [] for t in self.tasks}
        for task in self.ordered_tasks():
            for dep in task.deps:
                if dep in result:
                    result[dep].append(task.id)
        return result


# The content hash's recipe (cpo.plan.assemble.content_hash); bump it when the recipe changes.
HASH_RECIPE = "h2:"


def same_work(recorded: str | None, current: str) -> bool:
    """Whether a task's recorded content hash says its work is unchanged.

    A hash from an older recipe cannot tell either way: the recorded work is trusted rather
    than paid for twice.
    """
    if recorded is None:
        return False
    if not recorded.startswith(HASH_RECIPE):
        return True
    return recorded == current
