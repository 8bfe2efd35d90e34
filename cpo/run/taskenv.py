"""The environment of a task's setup commands and agent, the same for every backend.

The coordinator's environment, then the spec's `env:` and the task's own (a value may
name a coordinator variable, `$NAME` or `${NAME}`), then cpo's variables, which no
`env:` can change: `CPO_TASK_ID`, `CPO_SPEC_ID`, `CPO_WAVE`, `CPO_WORKTREE`,
`CPO_INTEGRATION_BRANCH` (not with --no-integration), `CPO_PARALLEL_DIR`, `CPO_ATTEMPT`,
and the task's ports (cpo.run.ports).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template

from cpo.plan.model import Plan, TaskSpec

EnvPairs = tuple[tuple[str, str], ...]


def expand(pairs: Iterable[tuple[str, str]], env: Mapping[str, str]) -> dict[str, str]:
    """`env:` values with `$NAME`/`${NAME}` replaced from `env`; unknown names are kept."""
    return {name: Template(value).safe_substitute(env) for name, value in pairs}


@dataclass(frozen=True)
class RunEnv:
    """What every task of a run has in its environment."""

    parallel_dir: Path
    spec_id: str | None = None
    integration_branch: str | None = None
    spec_env: EnvPairs = ()

    @classmethod
    def of(cls, plan: Plan, *, integration: bool) -> RunEnv:
        branch = plan.integration_branch if integration else None
        return cls(plan.root, plan.spec_id, branch, plan.env)

    def for_integration(self, worktree: Path) -> dict[str, str]:
        """The integration worktree's setup: the spec's variables, no task's."""
        env = dict(os.environ)
        env.update(expand(self.spec_env, os.environ))
        env.update(CPO_PARALLEL_DIR=str(self.parallel_dir), CPO_WORKTREE=str(worktree))
        env.update(self._run_vars())
        return env

    def _run_vars(self) -> dict[str, str]:
        out = {}
        if self.spec_id is not None:
            out["CPO_SPEC_ID"] = self.spec_id
        if self.integration_branch is not None:
            out["CPO_INTEGRATION_BRANCH"] = self.integration_branch
        return out

    def for_task(
        self,
        task: TaskSpec,
        worktree: Path,
        attempt_no: int,
        extra: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        env = dict(os.environ)
        env.update(expand(self.spec_env, os.environ))
        env.update(expand(task.env, os.environ))
        env.update(
            CPO_TASK_ID=task.id,
            CPO_WAVE=str(task.wave),
            CPO_PARALLEL_DIR=str(self.parallel_dir),
            CPO_WORKTREE=str(worktree),
            CPO_ATTEMPT=str(attempt_no),
        )
        env.update(self._run_vars())
        env.update(extra or {})
        return env


def secret_candidates(plan: Plan) -> dict[str, str]:
    """Every `env:` value of the plan, expanded, under a name the masker reads as its own
    (made unique: two tasks may set the same name to different secrets)."""
    pairs = [*plan.env, *(p for t in plan.tasks.values() for p in t.env)]
    values = expand(((f"{n}_{i}", v) for i, (n, v) in enumerate(pairs)), os.environ)
    return {**os.environ, **values}
