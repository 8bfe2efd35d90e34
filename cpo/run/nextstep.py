"""The next step a run's report, `cpo run` and `cpo status` print: always a command that
works when pasted.

Each step is prose, then the command last (`...: cpo run '/my dir' --resume`), with every
path shell-quoted, so a slash command or a script can take the command from the end.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from pathlib import Path

from cpo.planfile.paths import plan_file_of
from cpo.run.report import Report, TaskRecord
from cpo.run.states import RunStatus, TaskStatus, WaveStatus

# Reasons a task gets when another task's failure stopped it: never "the" failure.
_KNOCK_ON = ("interrupted", "fail_fast")


def quote(path: Path | str) -> str:
    return shlex.quote(str(path))


def cpo_command(verb: str, parallel_dir: Path | str, *flags: str) -> str:
    """`cpo <verb> <dir> [flags]`, the directory quoted for the shell; a plan file's run
    folder (`PLAN.cpo`) is named by its plan file, which every command takes."""
    target = plan_file_of(Path(parallel_dir)) or parallel_dir
    return " ".join(["cpo", verb, quote(target), *flags])


def next_step(report: Report, parallel_dir: Path | str) -> str | None:
    """What to do once a run has ended, from its report alone."""
    if report.status == RunStatus.COMPLETED:
        return _after_success(report, parallel_dir)
    if report.status == RunStatus.INTERRUPTED:
        return "continue with: " + cpo_command("run", parallel_dir, "--resume")
    if report.status == RunStatus.RUNNING:
        return "watch it: " + cpo_command("status", parallel_dir, "--watch")
    culprit = failed_task(report)
    if culprit is not None:
        return _after_task_failure(report, culprit, parallel_dir)
    bad_wave = next((w for w in report.waves if w.status == WaveStatus.FAILED), None)
    if bad_wave is not None and report.integration_worktree:
        log = Path(report.parallel_dir) / "logs" / f"wave-{bad_wave.number}-validation.log"
        return (
            f"wave {bad_wave.number} validation failed (see {quote(log)}); fix it with a "
            f"commit in {quote(report.integration_worktree)} (branch "
            f"{report.integration_branch}), then: " + cpo_command("run", parallel_dir, "--resume")
        )
    return "continue with: " + cpo_command("run", parallel_dir, "--resume")


def failed_task(report: Report) -> TaskRecord | None:
    """The task whose failure ended the run: a real failure before one it interrupted."""
    stopped = [
        t for t in report.tasks.values() if t.status in (TaskStatus.FAILED, TaskStatus.INTERRUPTED)
    ]
    own = [t for t in stopped if t.status == TaskStatus.FAILED and t.reason not in _KNOCK_ON]
    first = own or stopped
    return first[0] if first else None


def _after_task_failure(report: Report, task: TaskRecord, parallel_dir: Path | str) -> str:
    retry = cpo_command("run", parallel_dir, "--retry-failed")
    if task.reason == "conflict" and report.integration_worktree:
        files = ", ".join(task.conflict_files) or "some files"
        # A plan file's stream: its branch may hold a failed later task's work past it.
        stream = task.head and plan_file_of(Path(report.parallel_dir)) is not None
        what = task.head[:12] if stream and task.head else task.branch
        return (
            f"{task.id} conflicts with {report.integration_branch} in {files}: merge it by "
            f"hand (git -C {quote(report.integration_worktree)} merge {what}, fix the "
            f"files, git commit), then: " + cpo_command("run", parallel_dir, "--resume")
        )
    if task.reason in ("stashed_work", "stash_taken") and report.integration_worktree:
        return _after_stash(report, task, parallel_dir)
    if task.reason == "dependency_conflict" and task.error:
        return task.error  # the hand merge to make, then the retry (cpo.commands.streamhooks)
    where = quote(task.log) if task.log else quote(Path(report.parallel_dir) / "logs")
    return f"see {where} for {task.id} ({task.reason}); fix the cause, then: {retry}"


def _after_stash(report: Report, task: TaskRecord, parallel_dir: Path | str) -> str:
    """A task held back because of the shared stash (cpo.run.stash): put its branch right,
    merge it by hand, resume (it then counts as merged)."""
    merge = f"git -C {quote(report.integration_worktree or '')} merge {task.branch}"
    entry = re.search(r"stash entry ([0-9a-f]{12,})", task.error or "")
    if task.reason == "stashed_work" and entry and task.worktree:
        wt = quote(task.worktree)
        fix = (
            f"left work in the shared git stash, not on its branch: bring it back (git -C "
            f"{wt} stash apply {entry[1]}) and commit it"
        )
        if report.options.get("executor", "local") != "local":
            # A worker's clone held it (cpo.worker.stashed): the run fetched the entry, but
            # made no worktree for the task here.
            fix = (
                f"left work in the git stash of its worker's clone, not on its branch: "
                f"bring it back in a worktree of {task.branch} (git worktree add {wt} "
                f"{task.branch}; git -C {wt} stash apply {entry[1]}) and commit it"
            )
    else:
        fix = (
            "may hold a stash entry another worktree made (its warnings in report.json name "
            f"it): check {task.branch} and commit what it should hold"
        )
    return f"{task.id} {fix}, merge it by hand ({merge}), then: " + cpo_command(
        "run", parallel_dir, "--resume"
    )


def _after_success(report: Report, parallel_dir: Path | str) -> str:
    pending = [w.number for w in report.waves if w.status == WaveStatus.PENDING]
    if pending:
        done = [w.number for w in report.waves if w.status == WaveStatus.COMPLETED]
        head = f"wave {done[-1]} done; " if done else ""
        return f"{head}run wave {pending[0]} next: " + cpo_command(
            "run", parallel_dir, "--wave", str(pending[0])
        )
    if report.integration_branch:
        return f"review {report.integration_branch} and merge it: " + cpo_command(
            "integrate", parallel_dir
        )
    folders = [t.branch.rpartition("/")[0] for t in report.tasks.values() if t.branch]
    shared = posixpath.commonpath(folders) if folders and all(folders) else ""
    pattern = f"{shared}/*" if shared else "*"
    return f"review the task branches: git branch --list {quote(pattern)}"
