"""report.json — the run's record and live status — and the manifest's `execution` block.

The report is saved a moment after each state change (changes made meanwhile share one
save): the changed records are appended to report.journal, and report.json is rewritten
atomically (temp file + rename) now and then (cpo.run.journal). A reader (`load_report`:
`cpo status`, `--resume`) never sees half a file, and a crash leaves a recent complete
state behind.
"""

# No `from __future__ import annotations`: pydantic would compile and evaluate each
# field's string annotation as the models are built, at every start of cpo.

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cpo.errors import UsageError
from cpo.run.conflictrecord import ConflictRecord, PredictedConflict
from cpo.run.journal import JOURNAL_FILE as JOURNAL_FILE  # its readers' one import
from cpo.run.journal import current
from cpo.run.recovery import Nudge, RepairRecord
from cpo.run.states import RunStatus, TaskStatus, WaveStatus

REPORT_VERSION: Literal[1] = 1
REPORT_FILE = "report.json"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class _Model(BaseModel):
    # Reports written by a newer cpo may carry more fields; keep reading them.
    model_config = ConfigDict(extra="allow", validate_assignment=False)


class SetupStep(_Model):
    """One setup command run in the task's worktree before its agent (README, setup)."""

    command: str
    exit_code: int | None = Field(description="None: it timed out")
    duration_s: float


class Attempt(_Model):
    number: int
    started_at: str
    finished_at: str | None = None
    status: TaskStatus = TaskStatus.RUNNING
    reason: str | None = None
    exit_code: int | None = None
    error: str | None = None
    session_id: str | None = None
    cost_usd: float | None = None
    start_point: str | None = None
    head: str | None = None
    saved_branch: str | None = Field(
        default=None, description="Branch keeping this attempt's work when a retry reset it"
    )
    kept_branch: str | None = Field(
        default=None,
        description="Branch cpo made to keep the agent's HEAD when it could not become the "
        "task's work (reason diverged or off_start_point)",
    )
    included: list[str] = Field(
        default_factory=list, description="Files copied in by .worktreeinclude and its keys"
    )
    setup: list[SetupStep] = Field(default_factory=list)
    ports: list[int] = Field(
        default_factory=list, description="The block of ports held: [first, last]; [] for none"
    )
    handle: dict[str, Any] | None = Field(
        default=None,
        description="Where the attempt ran (cpo.executors.spec.Handle: executor, id), for "
        "re-attaching after a restart; none: in a worktree of this machine",
    )
    nudges: list[Nudge] = Field(default_factory=list)


class TaskRecord(_Model):
    id: str
    wave: int
    status: TaskStatus = TaskStatus.PENDING
    reason: str | None = None
    error: str | None = None
    backend: str | None = None
    agent: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    duration_seconds: float | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    worktree: str | None = None
    branch: str | None = None
    start_point: str | None = None
    head: str | None = None
    commits: int = 0
    files_changed: list[str] = Field(default_factory=list)
    merged: bool = False
    merge_commit: str | None = None
    conflict_files: list[str] = Field(default_factory=list)
    predicted_conflicts: list[PredictedConflict] = Field(default_factory=list)
    conflicts: list[ConflictRecord] = Field(default_factory=list)
    marker: dict[str, Any] | None = None
    leftovers_committed: bool = False
    warnings: list[str] = Field(
        default_factory=list,
        description="What cpo noticed and handled: a marker in the start point or in the "
        "agent's commits, commits off the task branch, uncommitted submodule changes",
    )
    exit_code: int | None = None
    session_id: str | None = None
    turns: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    last_action: str | None = None
    log: str | None = None
    content_hash: str | None = None
    out_of_scope: list[str] = Field(
        default_factory=list, description="Files changed outside the task's declared scope"
    )


class ValidationRecord(_Model):
    kind: Literal["python", "shell"]
    source: str


class WaveRecord(_Model):
    number: int
    status: WaveStatus = WaveStatus.PENDING
    tasks: list[str] = Field(default_factory=list)
    validation: list[ValidationRecord] = Field(default_factory=list)
    validation_exit_code: int | None = None
    validation_duration_seconds: float | None = None
    validation_output_tail: str | None = None
    note: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    repairs: list[RepairRecord] = Field(default_factory=list)


class Report(_Model):
    cpo_report_version: Literal[1] = REPORT_VERSION
    cpo_version: str
    spec_id: str
    parallel_dir: str
    status: RunStatus = RunStatus.RUNNING
    started_at: str
    finished_at: str | None = None
    pid: int | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    repository: str | None = None
    base_branch: str | None = None
    base_commit: str | None = None
    integration_branch: str | None = None
    integration_worktree: str | None = None
    integration_commit: str | None = None
    workspace_root: str | None = None
    waves: list[WaveRecord] = Field(default_factory=list)
    tasks: dict[str, TaskRecord] = Field(default_factory=dict)
    error: str | None = None
    paused_until: str | None = Field(
        default=None, description="Launches wait for a usage limit to lift until then"
    )
    next_step: str | None = Field(default=None, description="What the user should do next")
    journal_seq: int = Field(
        default=0, description="The last change of report.journal this file holds (cpo.run.journal)"
    )

    def totals(self) -> dict[str, float | int]:
        cost = sum(t.cost_usd or 0.0 for t in self.tasks.values())
        cost += sum(r.cost_usd or 0.0 for w in self.waves for r in w.repairs)
        return {
            "tasks": len(self.tasks),
            "completed": sum(t.status == TaskStatus.COMPLETED for t in self.tasks.values()),
            "failed": sum(t.status == TaskStatus.FAILED for t in self.tasks.values()),
            "skipped": sum(t.status == TaskStatus.SKIPPED for t in self.tasks.values()),
            "cost_usd": round(cost, 6),
        }

    def wave(self, number: int) -> WaveRecord:
        return next(w for w in self.waves if w.number == number)


def status_words(rec: TaskRecord) -> str:
    """`failed (timeout)`; a reason that only repeats the status is not said twice."""
    reason = rec.reason if rec.reason and rec.reason != rec.status else None
    return str(rec.status) + (f" ({reason})" if reason else "")


def report_schema() -> dict[str, Any]:
    schema = Report.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "cpo report.json"
    return schema


def load_report(parallel_dir: Path) -> Report | None:
    """The last report written in `parallel_dir` with its journal's changes (cpo.run.journal)
    replayed, or None when there is none."""
    path = parallel_dir / REPORT_FILE
    if not path.exists():
        return None
    try:
        data = current(path)
        if isinstance(data, bytes):
            return Report.model_validate_json(data)
        return Report.model_validate(data)
    except (ValidationError, ValueError) as exc:
        first = str(exc).splitlines()[0]
        raise UsageError(
            f"{path}: not a cpo report ({first})",
            hint="`cpo clean` on this folder still finds the run's branches and worktrees "
            "(from the plan); move the file aside to start afresh with `cpo run`",
        ) from exc
