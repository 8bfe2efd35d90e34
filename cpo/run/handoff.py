"""At a dependent's launch: its dependencies' records into its prompt (cpo.plan.handoff)."""

from __future__ import annotations

from dataclasses import replace

from cpo.git import Git
from cpo.plan.handoff import DepWork, handoff_section, with_handoff
from cpo.plan.model import TaskSpec
from cpo.run.report import Report, TaskRecord

# git's diff stat between two commits, which never changes: (start, head) -> stat. A task's
# is asked at each of its dependents' launches, on the scheduler's thread, which launches
# nothing else meanwhile.
DiffStats = dict[tuple[str, str], str | None]


def dep_work(git: Git, rec: TaskRecord, stats: DiffStats | None = None) -> DepWork:
    """One dependency's work: its marker's summary, its files, git's diff stat (from
    `stats` when a dependent launched earlier asked it)."""
    summary = (rec.marker or {}).get("summary")
    stat = None
    if rec.start_point and rec.head and rec.head != rec.start_point:
        stats, key = {} if stats is None else stats, (rec.start_point, rec.head)
        if key not in stats:
            stats[key] = git.run("diff", "--shortstat", *key, check=False) or None
        stat = stats[key]
    return DepWork(
        rec.id, summary if isinstance(summary, str) else None, tuple(rec.files_changed), stat
    )


def handed_over(
    git: Git, report: Report, task: TaskSpec, limit: int, stats: DiffStats | None = None
) -> TaskSpec:
    """`task` with "What your dependencies built" appended to its prompt."""
    deps = [dep_work(git, report.tasks[d], stats) for d in task.deps if d in report.tasks]
    return replace(task, prompt=with_handoff(task.prompt, handoff_section(deps, limit)))
