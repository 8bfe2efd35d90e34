"""At a dependent's launch: its dependencies' records into its prompt (cpo.plan.handoff)."""

from __future__ import annotations

from dataclasses import replace

from cpo.git import Git
from cpo.plan.handoff import DepWork, handoff_section, with_handoff
from cpo.plan.model import TaskSpec
from cpo.run.report import Report, TaskRecord


def dep_work(git: Git, rec: TaskRecord) -> DepWork:
    """One dependency's work: its marker's summary, its files, git's diff stat."""
    summary = (rec.marker or {}).get("summary")
    stat = None
    if rec.start_point and rec.head and rec.head != rec.start_point:
        stat = git.run("diff", "--shortstat", rec.start_point, rec.head, check=False) or None
    return DepWork(
        rec.id, summary if isinstance(summary, str) else None, tuple(rec.files_changed), stat
    )


def handed_over(git: Git, report: Report, task: TaskSpec, limit: int) -> TaskSpec:
    """`task` with "What your dependencies built" appended to its prompt."""
    deps = [dep_work(git, report.tasks[d]) for d in task.deps if d in report.tasks]
    return replace(task, prompt=with_handoff(task.prompt, handoff_section(deps, limit)))
