"""Where a run's branches and worktrees go, and what a continued run keeps (README:
"Branch and folder names").

A new run names everything from the plan: task branches as the plan says
(`feature/<spec>/<id>`, or `feature/<id>` with `"branch_names": "plain"`), worktrees
`<workspace root>/<spec>/<id>`, the integration worktree `<workspace root>/<spec>/integration`.
Every decomposition numbers its tasks from task-001, so the spec id is in every name.

A continued run (`--resume`, `--retry-failed`, `--wave`) trusts its report: the branch and
worktree recorded for each task, the integration worktree, the workspace root, the schedule
and whether it integrates. Runs started by an older cpo (`feature/<id>`, `<root>/<id>`) or
with another `--workspace-root` carry on where they are; a flag that would move them is
refused rather than silently ignored.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cpo.plan.model import Plan
from cpo.run.report import Report

INTEGRATION_FOLDER = "integration"
DEFAULT_WORKSPACES = "../workspaces"


@dataclass(frozen=True)
class Layout:
    workspace_root: Path
    integration_worktree: Path
    worktrees: Mapping[str, Path]  # task id -> its worktree
    branches: Mapping[str, str]  # task id -> its branch


def default_workspace_root(repo: Path) -> Path:
    """`../workspaces/<repo folder name>`: sibling repositories never share a folder."""
    return (repo / DEFAULT_WORKSPACES / repo.name).resolve()


def merge_worktree(report: Report, repo: Path) -> Path:
    """Where `cpo integrate` makes its merge, in a temporary worktree beside the run's:
    `<workspace root>/<spec>/.integrate` (a task id cannot start with a dot). A kill of
    `cpo integrate` leaves it behind; the next integrate or `cpo clean` removes it."""
    root = Path(report.workspace_root) if report.workspace_root else default_workspace_root(repo)
    return root / report.spec_id / ".integrate"


def new_layout(plan: Plan, workspace_root: Path) -> Layout:
    spec_dir = workspace_root / plan.spec_id
    return Layout(
        workspace_root=workspace_root,
        integration_worktree=spec_dir / INTEGRATION_FOLDER,
        worktrees={tid: spec_dir / (t.worktree or tid) for tid, t in plan.tasks.items()},
        branches={tid: t.branch for tid, t in plan.tasks.items()},
    )


def recorded_layout(plan: Plan, report: Report, fresh: Layout) -> Layout:
    """The names `report` recorded; a task it does not know gets the name a new run would."""
    root = Path(report.workspace_root) if report.workspace_root else fresh.workspace_root
    worktrees, branches = dict(fresh.worktrees), dict(fresh.branches)
    for tid in plan.tasks:
        rec = report.tasks.get(tid)
        if rec is not None and rec.worktree:
            worktrees[tid] = Path(rec.worktree)
        if rec is not None and rec.branch:
            branches[tid] = rec.branch
    integ = report.integration_worktree
    return Layout(root, Path(integ) if integ else fresh.integration_worktree, worktrees, branches)


def with_branches(plan: Plan, layout: Layout) -> Plan:
    """The plan with each task's branch as the layout names it."""
    tasks = {tid: replace(t, branch=layout.branches[tid]) for tid, t in plan.tasks.items()}
    return replace(plan, tasks=tasks)


@dataclass(frozen=True)
class Recorded:
    """The options that shape a run's layout, as the run being continued recorded them."""

    workspace_root: Path | None
    schedule: str
    no_integration: bool

    @classmethod
    def of(cls, report: Report) -> Recorded:
        options: Mapping[str, Any] = report.options
        return cls(
            workspace_root=Path(report.workspace_root) if report.workspace_root else None,
            schedule=str(options.get("schedule") or "waves"),
            no_integration=bool(options.get("no_integration")) or not report.integration_branch,
        )


def layout_conflicts(
    recorded: Recorded,
    *,
    workspace_root: Path | None,
    schedule: str | None,
    no_integration: bool,
    parallel_dir: Path,
) -> list[str]:
    """Flags that disagree with the run being continued: one line each, with the fix.

    A flag not given (None, or no --no-integration) is not a disagreement: the recorded
    value is taken.
    """
    problems = []
    where = shlex.quote(str(parallel_dir))
    fresh = f"or start afresh: cpo clean {where}, then cpo run {where} with it"
    if (
        workspace_root is not None
        and recorded.workspace_root is not None
        and workspace_root != recorded.workspace_root
    ):
        problems.append(
            f"--workspace-root {workspace_root}: the run being continued has its worktrees "
            f"under {recorded.workspace_root}; drop the flag (it is taken from the report), "
            + fresh
        )
    if schedule is not None and schedule != recorded.schedule:
        problems.append(
            f"--schedule {schedule}: the run being continued was scheduled "
            f"{recorded.schedule}; drop the flag, " + fresh
        )
    if no_integration and not recorded.no_integration:
        problems.append(
            "--no-integration: the run being continued merges into its integration branch; "
            "drop the flag, " + fresh
        )
    return problems
