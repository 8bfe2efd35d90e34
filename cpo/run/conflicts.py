"""Merge conflicts in a run: foreseen as soon as a task finishes, handled when its merge
into the integration branch meets one (README, "When things go wrong").

Foreseen: `git merge-tree --write-tree` (no worktree touched) merges the finished task's
branch with the integration head and with every other finished, unmerged branch of its
wave; what would conflict goes into the task's record (`predicted_conflicts`), the
`[PROGRESS]` lines and the live table before the merge happens.

Handled, by `--on-conflict` (manifest `on_conflict`, config `parallel.on_conflict`):
- `rerun` (default): the task runs again, starting from the integration head (the work
  it conflicted with included), its prompt naming the files and the tasks whose work it
  must build on; its earlier branch is kept as `<branch>-attempt-N`. A branch started
  from the integration head merges without conflict unless another merge lands while it
  runs (the DAG schedule), so it converges; after MAX_RERUNS it fails as `conflict`.
- `resolve`: an agent concludes the merge in the integration worktree (cpo.run.resolve).
- `stop`: the task fails as `conflict` and the merge is aborted.
Every conflict and what was done about it goes into the task's log and record
(`conflicts`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Literal

from cpo.errors import CpoError
from cpo.git import MergeResult
from cpo.logfile import log
from cpo.plan.model import OnConflict, TaskSpec
from cpo.run.claim import saved_branch
from cpo.run.conflictrecord import ConflictRecord, PredictedConflict
from cpo.run.options import RunContext, task_settings
from cpo.run.progress import Progress
from cpo.run.report import Report, TaskRecord, now_iso
from cpo.run.reportwriter import ReportWriter
from cpo.run.resolve import Resolution, Resolver
from cpo.run.scheduler import RERUN
from cpo.run.slots import Slots
from cpo.run.states import TaskStatus
from cpo.run.tasklog import AgentRun
from cpo.secrets import Masker


@dataclass(frozen=True)
class EndMerge:
    """A merge made for a task once nothing more runs (a plan file's stream, its last
    completed task standing for it: cpo.commands.streamhooks), not of its branch."""

    commit: str  # what is merged
    message: str
    # Where a rerun of the task starts, given the integration head; None: nowhere that
    # would settle the conflict.
    start_from: Callable[[str], str | None]
    rerun: bool = True  # False: nothing may run again (launches halted): as with stop


# Reruns of one task after conflicts in one run; then the next conflict fails it.
MAX_RERUNS = 2
# Outcomes after which the task still has to build on the work it conflicted with.
_UNSETTLED = ("rerun", "stopped", "unresolved")


class Conflicts:
    """The conflicts of one run; `predict` runs on task threads, the rest on the
    scheduler's (where every merge happens)."""

    def __init__(
        self,
        ctx: RunContext,
        writer: ReportWriter,
        progress: Progress,
        masker: Masker,
        agents: AgentRun,
        env: dict[str, str],
        slots: Slots,
    ) -> None:
        self.ctx, self.writer, self.progress, self.masker = ctx, writer, progress, masker
        self.git = ctx.git
        self.branch = ctx.plan.integration_branch
        self.worktree = ctx.integration_worktree
        self.logs_dir = ctx.plan.root / "logs"
        self.reruns: dict[str, int] = {}
        # (integration head, the task whose merge made it): the merges of this run, in order.
        self.landed: list[tuple[str, str | None]] = []
        if writer.report.integration_commit:
            self.landed.append((writer.report.integration_commit, None))
        self.resolver = Resolver(
            ctx.git,
            self.worktree,
            self.branch,
            agents,
            env,
            lambda t: task_settings(ctx, t),
            slots,
        )

    # -- foreseen ---------------------------------------------------------------------
    def predict(self, task: TaskSpec) -> None:
        """A finished task: the conflicts its merge will meet, recorded and shown. One with
        a finished wave-mate goes on both records: whichever merges second meets it.

        `git merge-tree` is asked only where a conflict can be: where the paths changed
        on both sides meet (cpo's own git processes per task stay few, tests/test_git_calls).
        """
        if self.ctx.opts.no_integration:
            return
        try:
            self._predict(task)
        except CpoError as exc:  # a forecast: its failure must not fail the task or the run
            log.warning("task %s: no conflict prediction: %s", task.id, exc)

    def _predict(self, task: TaskSpec) -> None:
        with self.writer.reading() as report:
            rec = report.tasks[task.id]
            if rec.status != TaskStatus.COMPLETED or not rec.head:
                return
            head, start, mine = rec.head, rec.start_point, set(rec.files_changed)
            integ = report.integration_commit
            changed = {r.id: set(r.files_changed) for r in report.tasks.values() if r.merged}
            mates = [
                (r.id, r.branch or "", r.head)
                for t in self.ctx.plan.wave_of(task.id).task_ids
                if t != task.id
                and (r := report.tasks[t]).status == TaskStatus.COMPLETED
                and not r.merged
                and r.head
                and clash(mine, r.files_changed)
            ]
        found: list[PredictedConflict] = []
        landed = self._landed_since(start)
        if (
            integ
            and integ != start
            and (landed is None or any(clash(mine, changed.get(t, ())) for t in landed))
        ):
            files = self.git.merge_tree(integ, head)
            found += self._owned(files, landed or list(changed), changed, start)
        for other, branch, other_head in mates:
            files = self.git.merge_tree(other_head, head)
            if files:
                found.append(PredictedConflict(with_task=other, branch=branch, files=list(files)))
                theirs = PredictedConflict(with_task=task.id, branch=task.branch, files=list(files))
                with self.writer.update_task(other) as mate:
                    kept = [p for p in mate.predicted_conflicts if p.with_task != task.id]
                    mate.predicted_conflicts = [*kept, theirs]
                self._show(mate, theirs)
        with self.writer.update_task(task.id) as rec:
            rec.predicted_conflicts = found
        for p in found:
            self._show(rec, p)

    def _landed_since(self, start: str | None) -> list[str] | None:
        """The tasks merged since `start`, when it is a head this run's merges made (the
        integration branch only moves by them); None when it is not known."""
        heads = [h for h, _ in self.landed]
        if start is None or start not in heads:
            return None
        return [t for _, t in self.landed[heads.index(start) + 1 :] if t]

    def _show(self, rec: TaskRecord, p: PredictedConflict) -> None:
        """A predicted conflict in the [PROGRESS] lines and the task's log."""
        files = ",".join(p.files)
        with_ = f"with={p.with_task}" if p.with_task else f"branch={p.branch}"
        self.progress.task_event(rec, f"status=conflict_predicted {with_} files={files}")
        with (self.logs_dir / f"{rec.id}.log").open("a", encoding="utf-8") as fh:
            fh.write(f"[cpo] predicted conflict with {p.with_task or p.branch} in {files}\n")

    def _owned(
        self,
        files: tuple[str, ...],
        candidates: list[str],
        changed: dict[str, set[str]],
        start: str | None,
    ) -> list[PredictedConflict]:
        """Conflicts with the integration head, one per merged task that changed the files
        since the task started (its earlier work is in the start point, not in conflict)."""
        left, found = set(files), []
        for tid in candidates:
            theirs = sorted(left & changed.get(tid, set()))
            merged = self.writer.report.tasks[tid].merge_commit
            if theirs and not (start and merged and self.git.is_ancestor(merged, start)):
                found.append(PredictedConflict(with_task=tid, branch=self.branch, files=theirs))
                left -= set(theirs)
        if left:
            found.append(PredictedConflict(with_task=None, branch=self.branch, files=sorted(left)))
        return found

    # -- at the merge -----------------------------------------------------------------
    def merge(self, task: TaskSpec, end: EndMerge | None = None) -> MergeResult | Literal["rerun"]:
        """Merge the task into the integration branch; on a conflict, do what
        --on-conflict says. RERUN: the task is ready to run again (cpo.run.scheduler).
        `end`: a plan file stream's merge at the end, for which the task stands."""
        mode = self.ctx.policy.on_conflict if end is None or end.rerun else "stop"
        before = self.writer.report.integration_commit  # only merges move it, all here
        result = self.git.merge(
            self.worktree,
            task.branch if end is None else end.commit,
            f"Merge {task.branch} ({task.id}, wave {task.wave})" if end is None else end.message,
            keep_conflicts=mode == "resolve",
        )
        handled = self._handled(task, result, mode, before, end)
        if isinstance(handled, MergeResult) and handled.ok and handled.commit:
            self.landed.append((handled.commit, task.id))
        return handled

    def _handled(
        self,
        task: TaskSpec,
        result: MergeResult,
        mode: OnConflict,
        before: str | None,
        end: EndMerge | None = None,
    ) -> MergeResult | Literal["rerun"]:
        if result.failure != "conflict" or not result.conflict_files:
            return result  # merged, or a failure no rerun or resolver can help (hooks.py)
        files = list(result.conflict_files)
        event = ConflictRecord(
            at=now_iso(),
            files=files,
            with_tasks=self._culprits(task, files),
            integration_head=before,
            action=mode,
            outcome="stopped",
        )
        whose = f" (with {', '.join(event.with_tasks)})" if event.with_tasks else ""
        said = ", ".join(files) + whose
        self._log(task, f"\n=== merge conflict in {said}: --on-conflict {mode} ===")
        self.progress.task_event(
            self.writer.report.tasks[task.id],
            f"status=conflict files={','.join(files)} action={mode}",
        )
        if mode == "resolve" and before is not None:
            # On disk first: a run killed while the resolver works leaves a merge --resume
            # must check before it counts (cpo.run.resume).
            self._record(task, event.model_copy(update={"outcome": "resolving"}), durable=True)
            theirs = None if end is None else end.commit
            prompts = self._prompts(task, event)
            outcome = self.resolver.resolve(task, files, before, prompts, theirs)
            result = self._resolved(task, event, outcome, result)
        elif mode == "rerun" and self.reruns.get(task.id, 0) < MAX_RERUNS:
            start = before if end is None or before is None else end.start_from(before)
            if start is None:
                event.error = (
                    f"the work {task.id} started from conflicts with {self.branch} too: "
                    "running it again cannot settle that"
                )
            else:
                self.reruns[task.id] = self.reruns.get(task.id, 0) + 1
                event.outcome = "rerun"
                self._rerun(task, event, start)
                return RERUN
        elif mode == "rerun":
            event.error = f"it conflicted again after {MAX_RERUNS} reruns"
        self._record(task, event)
        if event.error:
            self._log(task, f"[cpo] not merged: {event.error}")
        return result

    def _resolved(
        self, task: TaskSpec, event: ConflictRecord, res: Resolution, failed: MergeResult
    ) -> MergeResult:
        event.outcome = "resolved" if res.commit else "unresolved"
        event.error = self.masker.mask(res.problem) if res.problem else None
        event.merge_commit, event.kept_branch = res.commit, res.kept_branch
        event.resolver_session_id, event.resolver_cost_usd = res.session_id, res.cost_usd
        event.duration_seconds = res.duration
        if res.commit is None:
            return failed
        self._log(task, f"=== conflict resolved by the resolver agent: merge {res.commit[:12]} ===")
        return MergeResult(ok=True, commit=res.commit)

    def _rerun(self, task: TaskSpec, event: ConflictRecord, head: str | None) -> None:
        """The task's record ready for another run, from the integration head."""
        with self.writer.update_task(task.id, durable=True) as rec:
            rec.conflicts.append(event)
            rec.status, rec.reason, rec.error = TaskStatus.PENDING, None, None
            rec.predicted_conflicts = []  # about the work it now redoes
            # The next attempt starts here; the task runner keeps the old work on
            # <branch>-attempt-N before it resets the worktree (cpo.run.taskrun).
            rec.start_point = head
        self._log(task, f"[cpo] running {task.id} again on top of {self.branch} ({head})")
        log.info("task %s: merge conflict, running it again", task.id)

    def _record(self, task: TaskSpec, event: ConflictRecord, *, durable: bool = False) -> None:
        """The conflict into the task's record (in place of its "resolving" entry)."""
        with self.writer.update_task(task.id, durable=durable) as rec:
            if rec.conflicts and rec.conflicts[-1].outcome == "resolving":
                rec.conflicts.pop()
            rec.conflicts.append(event)
            if event.resolver_cost_usd:  # spent on the task's behalf: in its cost
                rec.cost_usd = round((rec.cost_usd or 0.0) + event.resolver_cost_usd, 6)

    def _culprits(self, task: TaskSpec, files: list[str]) -> list[str]:
        """The merged tasks that changed any of `files`: the work the task conflicts with."""
        with self.writer.reading() as report:
            named = [
                p.with_task
                for p in report.tasks[task.id].predicted_conflicts
                if p.with_task and set(p.files) & set(files)
            ]
            done = [r for r in report.tasks.values() if r.merged]
            changed = [r.id for r in done if set(r.files_changed) & set(files)]
            return list(dict.fromkeys(t for t in [*named, *changed] if report.tasks[t].merged))

    # -- at the launch ----------------------------------------------------------------
    def for_launch(self, task: TaskSpec) -> TaskSpec:
        """The task as its agent gets it: after a conflict, with a prompt section naming
        the files and the tasks whose work it must now build on."""
        rec = self.writer.report.tasks[task.id]
        if not rec.conflicts or rec.merged or rec.conflicts[-1].outcome not in _UNSETTLED:
            return task
        head = self.git.rev(f"refs/heads/{task.branch}")
        saved = saved_branch(self.git, task.branch, len(rec.attempts), head)
        return replace(task, prompt=task.prompt + rerun_section(rec, self.branch, saved))

    def _prompts(self, task: TaskSpec, event: ConflictRecord) -> list[tuple[TaskSpec, TaskRecord]]:
        """The tasks on both sides of a conflict with their records: those already merged,
        then the one being merged."""
        plan, tasks = self.ctx.plan, self.writer.report.tasks
        sides = [t for t in event.with_tasks if t in plan.tasks]
        return [(plan.tasks[t], tasks[t]) for t in [*sides, task.id]]

    def _log(self, task: TaskSpec, text: str) -> None:
        with (self.logs_dir / f"{task.id}.log").open("a", encoding="utf-8") as fh:
            fh.write(self.masker.mask(text) + "\n")


def rerun_section(rec: TaskRecord, integration_branch: str, saved: str) -> str:
    """What a task's agent is told when it runs again after its merge conflicted
    (`saved`: the branch its earlier attempt is kept on)."""
    last = rec.conflicts[-1]
    whose = ", ".join(last.with_tasks) or "other tasks"
    files = "\n".join(f"- {f}" for f in last.files)
    return (
        "\n\n=== MERGE CONFLICT: BUILD ON THE WORK ALREADY MERGED ===\n"
        f"An earlier run of this task could not be merged into {integration_branch}: its "
        f"changes conflicted with the work of {whose} in these files:\n{files}\n"
        f"This worktree now starts from {integration_branch} as it is now, with the work of "
        f"{whose} in it. Read those files first, keep what is there and add this task's "
        "work on top of it, so that both stand; do not undo or rewrite the other work. "
        f"Your earlier attempt is kept on the branch {saved} if you want to look at it "
        f"(git diff HEAD {saved}).\n"
    )


def clash(ours: Iterable[str], theirs: Iterable[str]) -> bool:
    """Whether two sides' changed paths can meet in a merge: a path both changed, or a
    file one side changed where the other has a folder (a file/directory conflict)."""
    a, b = set(ours), set(theirs)
    return bool(a & b or a & _folders(b) or b & _folders(a))


def _folders(paths: set[str]) -> set[str]:
    return {p[:i] for p in paths for i, ch in enumerate(p) if ch == "/"}


def conflict_lines(report: Report) -> list[str]:
    """One line per merge conflict of the run and what came of it (the run's summary)."""
    return [
        f"{rec.id}: merge conflict in {', '.join(c.files)}"
        + (f" with {', '.join(c.with_tasks)}" if c.with_tasks else "")
        + f": {c.outcome.replace('_', ' ')}"
        for rec in report.tasks.values()
        for c in rec.conflicts
    ]
