"""The run engine's hooks for a plan file's streams (`cpo run PLAN.md`).

Each stream is a chain of cpo tasks sharing one branch and worktree
(cpo.planfile.translate), so the engine's own machinery (attempts, retries, the report,
progress, resume) runs every task; only three things differ from a parallel directory:

- where a task starts: where its stream's branch is, so it sees the commits of the
  stream's earlier tasks; the work of the tasks of other streams it `Depends` on is merged
  into the stream's branch first (in the stream's worktree, idle between two of its tasks).
  A conflict there fails the task as `dependency_conflict`, naming the files and the merge
  to make by hand (`--on-conflict` does not apply: there is no work of the task to rerun
  or resolve yet). Not `conflict`: that one says the task's own work is done and only its
  merge into the integration branch is missing (cpo.run.resume counts it as done once that
  merge is made), which is not so here. Once the stream's branch holds that work (its
  end merge's rerun, below), the error says the conflict is settled and gives the retry.
  A task whose stream's merge stopped at a conflict starts, run again, as a rerun does
  (below);
- a completed task is not merged into the integration branch: the scheduler is told it is
  merged, so the next task of its stream may start;
- the streams are merged into the integration branch in table order (each stream's first
  row) once nothing more runs (the scheduler's `settle`), before the plan's validation. A
  stream's merge is its last completed task's head, so work of a failed task never reaches
  the integration branch. A conflict is handled by cpo.run.conflicts as --on-conflict
  says, that task standing for the stream: a rerun starts from the integration head with
  the stream's work from before the task merged in (so none of it is left out), and the
  streams after it merge once it is done.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from cpo.errors import CpoError, TaskFailure
from cpo.git import MergeResult
from cpo.logfile import log
from cpo.plan.model import TaskSpec, WaveSpec
from cpo.planfile.translate import Streams
from cpo.run.conflicts import EndMerge
from cpo.run.hooks import RunHooks
from cpo.run.nextstep import cpo_command, quote
from cpo.run.report import TaskRecord
from cpo.run.states import RunStatus, TaskStatus

# The reason of a task whose dependency's work conflicts with its stream's (see above).
DEPENDENCY_CONFLICT = "dependency_conflict"


class StreamHooks(RunHooks):
    """RunHooks for a plan file: `streams` from its table; `chosen`: the `--stream`s."""

    def __init__(
        self,
        streams: Streams,
        chosen: tuple[str, ...],
        *args: Any,
        reopened: Callable[[str], None] = lambda _task_id: None,
    ) -> None:
        super().__init__(*args)
        self.streams = streams
        self.chosen = chosen
        # Each stream's merge, once it is settled: merged (or nothing to merge) or failed.
        self.settled: dict[str, bool] = {}
        self.streams_merged: bool | None = None  # None: not all settled yet
        # A completed task sent back to run again (its status in the plan: as before).
        self.reopened = reopened

    # -- where a task starts ------------------------------------------------------------
    def start_point(self, task: TaskSpec) -> str:
        git = self.ctx.git
        again = self._after_conflict(task)
        if again is not None:
            return again
        head = git.rev(f"refs/heads/{task.branch}") or super().start_point(task)
        wanted = [(d, c) for d, c in self._dependency_heads(task) if not git.is_ancestor(c, head)]
        if not wanted:
            return head
        worktree = self.ctx.worktree(task.id)
        if not git.checked_out(worktree):  # made by the run's set-up, never checked out
            git.check_out(worktree, head)
        stream = self.streams.of[task.id]
        for dep, commit in wanted:
            theirs = self.streams.of[dep]
            result = git.merge(
                worktree, commit, f"Merge {dep} (stream {theirs}) into stream {stream}"
            )
            if not result.ok:  # aborted: the worktree is as it was, on the stream's branch
                error = self._unmerged_error(task, dep, commit, result)
                if result.failure == "conflict" and result.conflict_files:
                    self._dependency_conflict(task, dep, result, error)
                    raise TaskFailure(error, reason=DEPENDENCY_CONFLICT)
                raise CpoError(error)
            head = result.commit or git.rev("HEAD", cwd=worktree) or head
        return head

    def _after_conflict(self, task: TaskSpec) -> str | None:
        """A task whose stream's merge conflicted and stopped, run again (`--retry-failed`,
        the plan run again): like a rerun, from the integration head with the stream's
        work from before the task merged in. None: from its stream's branch, as when that
        moved since (a merge by hand in the stream's worktree, say)."""
        rec = self.writer.report.tasks[task.id]
        last = rec.conflicts[-1] if rec.conflicts else None
        if last is None or rec.merged or not rec.attempts or self.ctx.opts.no_integration:
            return None
        if last.outcome not in ("stopped", "unresolved"):
            return None
        if self.ctx.git.rev(f"refs/heads/{task.branch}") != rec.head:
            return None
        stream, before = self.streams.of[task.id], rec.attempts[-1].start_point
        return self._rerun_start(stream, before, self._integration_head())

    def _unmerged_error(self, task: TaskSpec, dep: str, commit: str, result: MergeResult) -> str:
        ours, theirs = self.streams.of[task.id], self.streams.of[dep]
        if result.failure != "conflict" or not result.conflict_files:
            said = ", ".join(result.conflict_files) or result.message.strip()
            return (
                f"{task.id} depends on {dep}, whose work (stream {theirs}) does not merge "
                f"into stream {ours} ({result.failure}: {said})"
            )
        worktree = quote(self.ctx.worktree(task.id))
        return (
            f"merge conflict in {', '.join(result.conflict_files)} between stream {theirs} "
            f"({dep}, which {task.id} depends on) and stream {ours}: merge it by hand "
            f"(git -C {worktree} merge {commit[:12]}, fix the files, git commit), then: "
            + cpo_command("run", self.ctx.plan.root, "--retry-failed")
        )

    # -- a dependency that conflicts ------------------------------------------------------
    def _dependency_conflict(
        self, task: TaskSpec, dep: str, result: MergeResult, error: str
    ) -> None:
        """Say the conflict with `dep`'s work in the task's log, record and progress
        (`error`: what happened, what to do next); the task runner then fails the task with
        the reason the TaskFailure names."""
        files = list(result.conflict_files)
        with (self.logs_dir / f"{task.id}.log").open("a", encoding="utf-8") as fh:
            fh.write(
                f"\n=== merge conflict in {', '.join(files)} (with {dep}, stream "
                f"{self.streams.of[dep]}): {task.id} does not start ===\n"
                f"{self.masker.mask(result.message)}\n[cpo] {error}\n"
            )
        with self.writer.update_task(task.id) as rec:
            rec.conflict_files = files
        self.progress.task_event(rec, f"status=conflict files={','.join(files)} action=stop")

    def _dependency_conflicts_settled(self, stream: str) -> None:
        """A task of `stream` that failed because a dependency's work conflicted with the
        stream's, once the stream's branch holds that work (its last completed task ran
        again on top of the integration branch after its own merge conflicted): the merge
        by hand its error gave would merge nothing now, so the error says the conflict is
        settled and gives the retry. It stays failed: it has not run."""
        git, root = self.ctx.git, self.ctx.plan.root
        head = git.rev(f"refs/heads/{self.streams.branches[stream]}")
        if head is None:
            return
        recs = [self.writer.report.tasks[t] for t in self.streams.tasks(stream)
                if t in self.ctx.plan.tasks]  # fmt: skip
        ran = [r.id for r in recs if r.conflicts and r.conflicts[-1].outcome == "rerun"]
        how = (
            f" ({ran[-1]} ran again on top of {self.ctx.plan.integration_branch} after "
            "its merge conflicted)"
            if ran
            else ""
        )
        for rec in recs:
            if rec.status != TaskStatus.FAILED or rec.reason != DEPENDENCY_CONFLICT:
                continue
            deps = self._dependency_heads(self.ctx.plan.tasks[rec.id])
            if not deps or not all(git.is_ancestor(commit, head) for _, commit in deps):
                continue  # still to merge: the error's merge by hand stands
            work = ", ".join(f"{d} (stream {self.streams.of[d]})" for d, _ in deps)
            files = ", ".join(rec.conflict_files) or "its files"
            error = (
                f"the merge conflict in {files} with the work of {work} is settled: stream "
                f"{stream} holds that work now{how}; {rec.id} has not run and needs no merge "
                "by hand, run it: " + cpo_command("run", root, "--retry-failed")
            )
            with self.writer.update_task(rec.id) as now:
                now.error, now.conflict_files = error, []
            with (self.logs_dir / f"{rec.id}.log").open("a", encoding="utf-8") as fh:
                fh.write(f"[cpo] {error}\n")

    def _dependency_heads(self, task: TaskSpec) -> list[tuple[str, str]]:
        """(task, commit) for each task of another stream it depends on: its head when it
        ran in this run, else (done before) where its stream's branch is."""
        heads = []
        for dep in self.streams.depends.get(task.id, ()):
            rec = self.writer.report.tasks.get(dep)
            commit = rec.head if rec is not None and dep in self.ctx.plan.tasks else None
            if commit is None:
                branch = self.streams.branches[self.streams.of[dep]]
                commit = self.ctx.git.rev(f"refs/heads/{branch}")
            if commit is not None:
                heads.append((dep, commit))
        return heads

    # -- merges ---------------------------------------------------------------------------
    def merge_task(self, task: TaskSpec) -> bool:
        return True  # its work is on its stream's branch; streams merge at the end

    def validate_wave(self, wave: WaveSpec) -> bool:
        # The plan is one wave: its validation runs on every stream merged (with
        # --no-integration nothing merges, and the engine's hook says it did not run).
        merged = self.ctx.opts.no_integration or self.merge_streams()
        return merged and super().validate_wave(wave)

    def schedule_ended(self, status: RunStatus) -> RunStatus:
        if status == RunStatus.INTERRUPTED or self.ctx.opts.no_integration:
            return status  # --resume carries on; nothing half merged meanwhile
        return status if self.merge_streams() else RunStatus.FAILED

    def settle(self, rerun: bool) -> list[str]:
        """Merge the streams not merged yet into the integration branch, in table order.
        A conflict is handled as --on-conflict says, the stream's last completed task
        standing for it (cpo.run.conflicts): returned to run again (`rerun`, unless
        launches are halted), the streams after it wait for its rerun (table order)."""
        if self.ctx.opts.no_integration:
            return []
        self.worktrees.await_integration()  # checked out in the background (set-up)
        for stream in self._chosen():
            if stream not in self.settled:
                outcome = self._merge_stream(stream, rerun)
                if isinstance(outcome, str):
                    return [outcome]
                self.settled[stream] = outcome
                self._dependency_conflicts_settled(stream)
        self.streams_merged = all(self.settled.values())
        return []

    def merge_streams(self) -> bool:
        """Whether every stream merged (merged now if the schedule did not settle them)."""
        if self.streams_merged is None:
            self.settle(rerun=False)
        return bool(self.streams_merged)

    def _chosen(self) -> list[str]:
        return [s for s in self.streams.order if not self.chosen or s in self.chosen]

    def _merge_stream(self, stream: str, rerun: bool) -> bool | str:
        """True: merged (or nothing to merge); False: failed; a task id: to run again."""
        git, branch = self.ctx.git, self.streams.branches[stream]
        ids = [t for t in self.streams.tasks(stream) if t in self.ctx.plan.tasks]
        recs = [self.writer.report.tasks[t] for t in ids]
        done = [r for r in recs if r.status == TaskStatus.COMPLETED and r.head]
        point = _merge_point(done, recs) or git.rev(f"refs/heads/{branch}")
        integration = self._integration_head()
        if point is None or git.is_ancestor(point, integration):
            return True
        names = ", ".join(r.id for r in done) or "earlier tasks"
        message = f"Merge stream {stream} ({branch}: {names})"
        if not done:  # no task of this run to stand for it: nothing to rerun or resolve
            result = git.merge(self.integration, point, message)
            if not result.ok:
                log.warning("stream %s did not merge: %s", stream, result.message)
                return False
        else:
            last = done[-1]
            start = partial(self._rerun_start, stream, last.start_point)
            end = EndMerge(point, message, start, rerun=rerun)
            handled = self.conflicts.merge(self.ctx.plan.tasks[last.id], end)
            if isinstance(handled, str):  # RERUN
                self.reopened(last.id)
                return last.id
            result = handled
            if not result.ok:
                self._stream_failed(last, result)
                return False
        self.integration_head = result.commit or git.rev(self.ctx.plan.integration_branch)
        with self.writer.update() as report:
            report.integration_commit = self.integration_head
            for rec in done:
                if git.is_ancestor(rec.head or "", point):
                    report.tasks[rec.id].merged = True
                    report.tasks[rec.id].merge_commit = self.integration_head
        return True

    def _rerun_start(self, stream: str, before: str | None, integration: str) -> str | None:
        """Where a stream's last completed task runs again: the integration head with the
        stream's work from before that task (its earlier tasks, the Depends it merged)
        merged in, so that none of it is left out of the stream; None if that work
        conflicts too (a rerun of the task alone cannot settle it)."""
        git = self.ctx.git
        if before is None or git.is_ancestor(before, integration):
            return integration
        if git.merge_tree(integration, before):
            return None
        tree = git.run("merge-tree", "--write-tree", integration, before).split()[0]
        message = f"Merge stream {stream}'s earlier work into {self.ctx.plan.integration_branch}"
        return git.run("commit-tree", tree, "-p", integration, "-p", before, "-m", message)

    def _stream_failed(self, last: TaskRecord, result: MergeResult) -> None:
        """The stream's last completed task fails with the merge's reason (the plan then
        says TASK:FAILED)."""
        task = self.ctx.plan.tasks[last.id]
        self._log_merge_failure(task, result)
        with self.writer.update_task(task.id) as rec:
            rec.status, rec.reason, rec.error = TaskStatus.FAILED, *self._merge_failure(result)
            rec.conflict_files = list(result.conflict_files)
        self.progress.task_finished(rec)


def _merge_point(done: list[TaskRecord], recs: list[TaskRecord]) -> str | None:
    """What of a stream goes into the integration branch: its last completed task's head;
    with none completed in this run, the work it started from (earlier runs' tasks)."""
    if done:
        return done[-1].head
    return next((r.start_point for r in recs if r.start_point), None)
