"""What report.json says about merge conflicts: those predicted when a task finishes,
and those met at its merge with what was done about them (README, "When things go wrong").

Kept apart from cpo.run.report, which holds them in each task's record, so that the
conflict vocabulary lives in one place with cpo.run.conflicts, which fills it in.
"""

# No `from __future__ import annotations`: pydantic would compile and evaluate each
# field's string annotation as the models are built, at every start of cpo.

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cpo.plan.model import OnConflict


class _Model(BaseModel):
    # Like cpo.run.report's records: a newer cpo's fields are kept when read.
    # The report's schema holds these; their own validators are built at first use.
    model_config = ConfigDict(extra="allow", validate_assignment=False, defer_build=True)


class PredictedConflict(_Model):
    """A conflict `git merge-tree` foresaw when the task finished, before its merge."""

    with_task: str | None = Field(
        description="The task whose work it conflicts with; None: work on the integration "
        "branch that no task of the run changed"
    )
    branch: str = Field(description="The other side: a task branch or the integration branch")
    files: list[str]


class ConflictRecord(_Model):
    """A merge into the integration branch stopped by conflicts, and what cpo did."""

    at: str
    files: list[str]
    with_tasks: list[str] = Field(
        default_factory=list,
        description="Merged tasks that changed the conflicting files (the work the task "
        "must now build on)",
    )
    integration_head: str | None = Field(
        default=None, description="The integration branch's head the merge conflicted with"
    )
    action: OnConflict
    outcome: Literal[
        "rerun", "resolving", "resolved", "unresolved", "stopped", "merged_by_hand"
    ] = Field(
        description="rerun: the task runs again on top of integration_head; resolving: a "
        "resolver agent is at work (a run killed meanwhile says so; --resume checks it); "
        "resolved / unresolved: what the resolver's merge came to; stopped: the task failed "
        "(conflict); merged_by_hand: the user merged it and --resume counted it as merged"
    )
    error: str | None = None
    merge_commit: str | None = None
    kept_branch: str | None = Field(
        default=None, description="Branch keeping a rejected resolution's commits"
    )
    resolver_session_id: str | None = None
    resolver_cost_usd: float | None = None
    duration_seconds: float | None = None
