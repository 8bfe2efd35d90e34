"""The local executor: a task's attempts in its worktree on this machine.

Each attempt: make or reset the worktree at the task's start point (saving any earlier
work on an attempt branch first), ready it (files, setup commands, ports: cpo.run.ready),
run the agent (cpo.run.tasklog, cpo.run.attempt), then bring whatever the agent left onto
the task branch (cpo.run.claim). What comes back is the same `Exited` a remote worker
sends (cpo.run.remote), so the task runner records both alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cpo.agents.base import AgentOutcome
from cpo.executors.spec import Exited
from cpo.git import MARKER, Git
from cpo.indexlock import settle_index_lock
from cpo.plan.model import TaskSpec
from cpo.run.agentrun import TaskSettings
from cpo.run.attempt import AttemptResult, Ran, exited_of
from cpo.run.claim import clear_marker, hand_over, reclaim, saved_branch
from cpo.run.halfmoved import half_moved_to
from cpo.run.nudge import NudgedRun
from cpo.run.protocol import read_marker
from cpo.run.ready import TaskPrep
from cpo.run.report import Attempt
from cpo.run.reportwriter import ReportWriter
from cpo.run.stash import read_stash, stash_change, stash_verdict
from cpo.run.worktrees import RunWorktrees
from cpo.secrets import Masker


@dataclass(frozen=True)
class TaskNotes:
    """Where a task's attempts say what cpo did: its log, and warnings in the report."""

    logs_dir: Path
    writer: ReportWriter
    masker: Masker

    def line(self, task: TaskSpec, text: str) -> None:
        text = self.masker.mask(text)  # setup commands print what they like
        with (self.logs_dir / f"{task.id}.log").open("a", encoding="utf-8") as fh:
            fh.write(text + "\n")

    def warn(self, task: TaskSpec, warning: str | None) -> None:
        """A warning in the task log and the report."""
        if warning is None:
            return
        self.line(task, f"[cpo] warning: {warning}")
        with self.writer.update_task(task.id) as rec:
            rec.warnings.append(warning)


@dataclass(frozen=True)
class LocalExecutor:
    """Attempts in the task's worktree (the run's layout), agents in this process."""

    git: Git
    writer: ReportWriter
    notes: TaskNotes
    agents: NudgedRun  # the agent runs, with nudges when one stops early
    prep: TaskPrep
    worktrees: dict[str, Path]
    start_point: Callable[[TaskSpec], str]  # where a task branches from (the engine's)
    prepared: RunWorktrees | None = None
    name: str = "local"

    def prepare(self, task: TaskSpec, attempt_no: int) -> str:
        """The worktree clean at the task's start point, an earlier attempt's commits
        kept on a branch first; that start point."""
        worktree = self.worktrees[task.id]
        # Before any git command here: a lock a kill left (of the reset below, in an
        # earlier run, or of its agent's git) would fail them all (cpo.indexlock). This
        # task's agent is not running: it starts after the launch.
        cut_short = settle_index_lock(worktree)
        if cut_short:
            self.notes.line(task, "[cpo] removed the index.lock of a git command a kill cut short")
        self._reclaim(task, worktree)
        return self._prepare_worktree(task, worktree, attempt_no, cut_short=cut_short)

    def run(self, task: TaskSpec, settings: TaskSettings, start: str, attempt_no: int) -> Ran:
        """Ready the worktree and run the agent; then (`Ran.finish`) hand its work over
        to the task branch."""
        worktree, line = self.worktrees[task.id], self.notes.line
        # The stash is shared by every worktree: what this attempt did to it is judged
        # against what it held before (cpo.run.stash; a file read, no git process).
        stash_before = read_stash(self.git)
        started = self.prep.start(task, worktree, attempt_no, settings.timeout, line)
        try:
            if started.error is not None:
                result = AttemptResult(False, "setup_failed", started.error, AgentOutcome(), None)
            else:
                # Just before the agent: a marker counts only if this attempt's agent
                # writes it.
                self.notes.warn(task, clear_marker(self.git, worktree, start, task.id))
                result = self.agents.run(task, settings, worktree, attempt_no, started.env)
        finally:
            started.release()

        def finish() -> Exited:
            marker = read_marker(worktree)  # before hand_over, which may remove a committed one
            # Whatever happened, the agent's edits are committed and on a branch: never lost.
            work = hand_over(
                self.git, worktree, task.id, task.branch, start, attempt_no, ok=result.ok
            )
            change = stash_change(stash_before, read_stash(self.git), task.branch)
            work = stash_verdict(self.git, change, work, worktree, task.branch)
            return exited_of(result, work, marker, lambda text: line(task, text))

        return Ran(result.ok, result.reason, finish)

    def adopt(self, task: TaskSpec, settings: TaskSettings, attempt: Attempt) -> Ran | None:
        return None  # its agents end with the coordinator that started them

    def _prepare_worktree(
        self, task: TaskSpec, worktree: Path, attempt_no: int, *, cut_short: bool = False
    ) -> str:
        """Make the task's worktree clean at its start point; return that commit.

        A branch left by an earlier attempt keeps its work: its head is saved on
        `<branch>-attempt-N` before the reset, and the report names it. `cut_short`: a
        kill cut a git command short in it (its stale index.lock was just removed).
        """
        git, rec = self.git, self.writer.report.tasks[task.id]
        made = self.prepared
        if made is not None and made.take_fresh(worktree):
            # Made by the set-up with a new branch and no checkout: nothing in it to keep.
            start = self.start_point(task)
            made.check_out(worktree, start, task.sparse)
            if task.sparse is None and not (worktree / MARKER).exists():
                # Checked out at `start` just now, nothing run in it since: had `start`
                # held the marker, its file would be here. Known without a `git cat-file`
                # on the way to the agent (clear_marker; hand_over after it).
                git.tracks(start, MARKER, known=False)
            return start
        if not git.branch_exists(task.branch):
            start = self.start_point(task)
            git.add_worktree(worktree, task.branch, start)
            return start
        # No recorded start point (a changed task whose old work is already merged):
        # start again from the integration head, on top of that work.
        start = rec.start_point or self.start_point(task)
        if not worktree.is_dir() or worktree.resolve() not in git.worktrees():
            git.prune_worktrees()  # its folder may have been deleted by hand
            git.add_worktree(worktree, task.branch)
        elif git.complete_checkout(worktree):
            # A kill cut its checkout short: without this, every file would look deleted
            # and be committed as the agent's "uncommitted changes" below.
            self.notes.line(task, "[cpo] finished a checkout an earlier run left half done")
        if cut_short and half_moved_to(git, worktree, start):
            # The reset below, cut short by a kill on its way to the same start point:
            # committed, it would pass for the agent's "uncommitted changes" and be kept
            # on a spurious attempt branch. Each file is HEAD's or the start's: the reset
            # loses nothing.
            self.notes.line(task, "[cpo] finished a move to the start point a kill cut short")
        else:
            git.commit_leftovers(worktree, f"cpo: uncommitted changes left by {task.id}")
        head = git.rev(task.branch)
        if head and head != start and not git.is_ancestor(head, start):  # it holds work
            saved = saved_branch(git, task.branch, attempt_no - 1, head)
            if not git.branch_exists(saved):
                git.create_branch(saved, head)
            with self.writer.update_task(task.id) as rec:
                if rec.attempts:
                    rec.attempts[-1].saved_branch = saved
            self.notes.line(task, f"[cpo] earlier work kept on branch {saved}")
        git.reset_worktree(worktree, start)
        return start

    def _reclaim(self, task: TaskSpec, worktree: Path) -> None:
        """An earlier attempt's commits off the task branch, onto a branch before any reset."""
        rec = self.writer.report.tasks[task.id]
        if not rec.attempts or not rec.start_point:
            return
        last, start = rec.attempts[-1].number, rec.start_point
        what, kept = reclaim(self.git, worktree, task.id, task.branch, start, last)
        if kept:
            with self.writer.update_task(task.id) as rec:
                rec.attempts[-1].kept_branch = kept
        self.notes.warn(task, what)
