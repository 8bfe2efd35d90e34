"""The report's records of what cpo did to carry a run past an obstacle: nudges of agents
that stopped early (cpo.run.nudge) and repairs of failed wave validations (cpo.run.repair).

Kept apart from cpo.run.report, which holds them in its task and wave records.
"""

# No `from __future__ import annotations`: pydantic would compile and evaluate each
# field's string annotation as the models are built, at every start of cpo.

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    # Reports written by a newer cpo may carry more fields; keep reading them.
    # The report's schema holds these; their own validators are built at first use.
    model_config = ConfigDict(extra="allow", validate_assignment=False, defer_build=True)


class Nudge(_Model):
    """One continuation of an attempt's agent session (cpo.run.nudge)."""

    number: int
    why: str = Field(description="What was missing: no_completion_marker, idle_timeout...")
    session_id: str | None = None
    outcome: str | None = Field(default=None, description="ok, or the reason it still failed")
    cost_usd: float | None = None
    duration_seconds: float | None = None


class RepairRecord(_Model):
    """One repair of a failed wave validation (cpo.run.repair)."""

    number: int
    started_at: str
    finished_at: str | None = None
    duration_seconds: float | None = None
    outcome: str = Field(
        default="running",
        description="fixed, still_failing, no_change, agent_failed (reason in error), "
        "rewrote_history, interrupted, not_started, git_error",
    )
    error: str | None = None
    summary: str | None = Field(default=None, description="The agent's own account, if it gave one")
    session_id: str | None = None
    cost_usd: float | None = None
    diff_stat: str | None = None
    files_changed: list[str] = Field(default_factory=list)
    commit: str | None = Field(default=None, description="The repair's head, when it kept work")
    saved_branch: str | None = Field(
        default=None, description="Branch keeping a repair that did not fix the validation"
    )
    validation_exit_code: int | None = None
    log: str | None = None
