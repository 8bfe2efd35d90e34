"""Which task runs when: waves in order (or a DAG), a concurrency limit, failure cascades.

Pure scheduling. Running a task, merging it, validating a wave and stopping agents are
hooks passed in, so this module is tested alone with fake hooks (no git, no processes).
Tasks run on a thread pool; merges and validations run on the calling thread, one at a
time, so the integration branch only ever moves from one place.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Literal, Protocol

from cpo.plan.model import Plan, TaskSpec, WaveSpec
from cpo.run.priority import Mode, launch_ranks
from cpo.run.states import RunStatus, TaskStatus, WaveStatus

# Longest the scheduler's thread (the main thread) sleeps at once, in seconds.
WAKE_UP = 0.25

# Skips the user asked for (--skip, --wave): they do not make a run fail.
_CHOSEN_SKIPS = ("not_selected", "dependency_skipped")

# What merge_task answers for a task to run again (a conflict, --on-conflict rerun).
RERUN: Literal["rerun"] = "rerun"


@dataclass(frozen=True)
class TaskOutcome:
    ok: bool
    reason: str | None = None
    interrupted: bool = False
    # Set when no further task should start (e.g. "auth": every task would fail the same
    # way); tasks already running go on.
    halt: str | None = None
    # False when the task was stopped before its agent started (it waited for a slot):
    # it is then skipped like a task never launched, or left pending on an interrupt.
    started: bool = True


class Hooks(Protocol):
    def task_launched(self, task: TaskSpec, rank: int) -> None:
        """Called on the scheduler's thread, in launch order, just before run_task.

        `rank`: the task's launch priority (lower first, see cpo.run.priority); when tasks
        wait for agent slots, the slots should go by rank.
        """
        ...

    def run_task(self, task: TaskSpec) -> TaskOutcome:
        """Run one task to the end (on a worker thread)."""
        ...

    def merge_task(self, task: TaskSpec) -> bool | Literal["rerun"]:
        """Merge a completed task; False on conflict (the hook records the details);
        RERUN: it is to run again (then be merged), as if it had not run."""
        ...

    def validate_wave(self, wave: WaveSpec) -> bool: ...

    def task_skipped(self, task: TaskSpec, reason: str) -> None: ...

    def wave_changed(self, wave: WaveSpec, state: WaveStatus, note: str | None) -> None: ...

    def stop_running(self) -> None:
        """Fail-fast: stop the agents running now (their run_task returns interrupted)."""
        ...

    def settle(self, rerun: bool) -> Collection[str]:
        """The DAG schedule: nothing runs and nothing more can start, the waves not yet
        finished. Merges made only then (a plan file's streams) happen here; the tasks
        returned run again (as after RERUN), their merges then made at the next call.
        `rerun`: False once launches are halted (nothing may run again)."""
        ...


@dataclass
class ScheduleResult:
    status: RunStatus
    tasks: dict[str, TaskStatus]
    merged: set[str] = field(default_factory=set)  # completed and merged into the integration
    reasons: dict[str, str] = field(default_factory=dict)
    waves: dict[int, WaveStatus] = field(default_factory=dict)


class _Run:
    def __init__(
        self,
        plan: Plan,
        hooks: Hooks,
        *,
        mode: Mode,
        max_concurrent: int,
        fail_fast: bool,
        selected: Collection[str],
        done: Collection[str],
        validated: Collection[int],
        stop: threading.Event,
    ) -> None:
        self.plan = plan
        self.hooks = hooks
        self.rank = launch_ranks(plan, mode)
        self.max_concurrent = max(1, max_concurrent)
        self.fail_fast = fail_fast
        self.selected = set(selected)
        self.validated = set(validated)
        self.stop = stop
        # COMPLETED: the agent succeeded; in `merged` too once merged into the integration.
        self.states: dict[str, TaskStatus] = {
            t: (TaskStatus.COMPLETED if t in done else TaskStatus.PENDING) for t in plan.tasks
        }
        self.merged: set[str] = set(done)
        self.reasons: dict[str, str] = {}
        self.waves: dict[int, WaveStatus] = {w.number: WaveStatus.PENDING for w in plan.waves}
        self.halted: str | None = None  # why no more tasks start: fail_fast | validation
        self.agents_stopped = False
        self.running: dict[Future[TaskOutcome], TaskSpec] = {}
        self.reruns: list[TaskSpec] = []  # to launch again (RERUN), in merge order

    # -- small state helpers ---------------------------------------------------------
    def _set_wave(self, wave: WaveSpec, state: WaveStatus, note: str | None = None) -> None:
        if self.waves[wave.number] != state:
            self.waves[wave.number] = state
            self.hooks.wave_changed(wave, state, note)

    def _skip(self, task: TaskSpec, reason: str) -> None:
        self.states[task.id] = TaskStatus.SKIPPED
        self.reasons[task.id] = reason
        self.hooks.task_skipped(task, reason)

    def _blocker(self, task: TaskSpec) -> str | None:
        """Why a task cannot run: a dependency that did not make it, or None."""
        for dep in task.deps:
            state = self.states.get(dep)
            if state in (TaskStatus.FAILED, TaskStatus.INTERRUPTED):
                return "dependency_failed"
            if state == TaskStatus.SKIPPED:
                return (
                    "dependency_skipped"
                    if self.reasons.get(dep) in ("not_selected", "dependency_skipped")
                    else "dependency_failed"
                )
        return None

    def _deps_merged(self, task: TaskSpec) -> bool:
        return all(d in self.merged for d in task.deps)

    def _launch(self, pool: ThreadPoolExecutor, task: TaskSpec) -> None:
        wave = self.plan.wave_of(task.id)
        if self.waves[wave.number] == WaveStatus.PENDING:
            self._set_wave(wave, WaveStatus.RUNNING)
        self.states[task.id] = TaskStatus.RUNNING
        self.hooks.task_launched(task, self.rank[task.id])
        self.running[pool.submit(self.hooks.run_task, task)] = task

    def _collect(self) -> list[TaskSpec]:
        """Wait for at least one running task to end; record outcomes; return the finished."""
        finished: set[Future[TaskOutcome]] = set()
        while not finished:
            # Never blocked for long: a Ctrl-C that the kernel hands to another thread
            # only runs its Python handler once the main thread wakes.
            finished, _ = wait(list(self.running), timeout=WAKE_UP, return_when=FIRST_COMPLETED)
        tasks = []
        for fut in finished:
            task = self.running.pop(fut)
            outcome = fut.result()
            if not outcome.started:
                # Launches were held (fail-fast, auth) or stopped before its agent began.
                self.states[task.id] = TaskStatus.PENDING
                if not self.stop.is_set():
                    reason = outcome.reason or self.halted or "interrupted"
                    self.halted = self.halted or reason
                    self._skip(task, reason)
                    if reason == "fail_fast":
                        self._after_failure()
            elif outcome.ok:
                self.states[task.id] = TaskStatus.COMPLETED
            elif outcome.interrupted:
                self.states[task.id] = TaskStatus.INTERRUPTED
                self.reasons[task.id] = outcome.reason or "interrupted"
            else:
                self.states[task.id] = TaskStatus.FAILED
                self.reasons[task.id] = outcome.reason or "failed"
                if outcome.halt and self.halted is None:
                    self.halted = outcome.halt
                self._after_failure()
            tasks.append(task)
        return tasks

    def _merge(self, task: TaskSpec) -> None:
        merged = self.hooks.merge_task(task)
        if merged == RERUN:
            self.states[task.id] = TaskStatus.PENDING  # the DAG loop launches it again
            self.reruns.append(task)
        elif merged:
            self.merged.add(task.id)
        else:
            self.states[task.id] = TaskStatus.FAILED
            self.reasons[task.id] = "conflict"
            self._after_failure()

    def _after_failure(self) -> None:
        """Fail-fast: at the first failure nothing more starts and running agents stop."""
        if self.fail_fast and not self.agents_stopped:
            self.agents_stopped = True
            self.halted = self.halted or "fail_fast"
            self.hooks.stop_running()

    def _final(self, task_id: str) -> bool:
        """Nothing more will happen to the task in this run (merged, failed, skipped...)."""
        state = self.states[task_id]
        if state == TaskStatus.COMPLETED:
            return task_id in self.merged
        return state not in (TaskStatus.PENDING, TaskStatus.RUNNING)

    def _chosen_skip(self, task_id: str) -> bool:
        skipped = self.states[task_id] == TaskStatus.SKIPPED
        return skipped and self.reasons.get(task_id) in _CHOSEN_SKIPS

    def _finish_wave(self, wave: WaveSpec) -> None:
        """All of the wave's tasks are final: validate it if all merged, else fail it.

        Tasks the user chose to skip (--skip, --wave) do not fail a wave; a wave whose
        tasks were all skipped that way stays pending.
        """
        if self.stop.is_set():
            return  # interrupted: the wave stays open for --resume
        if all(self._chosen_skip(t) for t in wave.task_ids):
            return
        if all(t in self.merged or self._chosen_skip(t) for t in wave.task_ids):
            if wave.number in self.validated or not wave.validation:
                self._set_wave(wave, WaveStatus.COMPLETED)
                return
            self._set_wave(wave, WaveStatus.VALIDATING)
            if self.hooks.validate_wave(wave):
                self.validated.add(wave.number)
                self._set_wave(wave, WaveStatus.COMPLETED)
            else:
                self._set_wave(wave, WaveStatus.FAILED, "validation")
                if self.halted is None:
                    self.halted = "validation"
        else:
            merged = sum(t in self.merged for t in wave.task_ids)
            self._set_wave(wave, WaveStatus.FAILED, f"tasks {merged}/{len(wave.task_ids)}")

    def _skip_remaining(self, tasks: Iterable[TaskSpec]) -> None:
        reason = self.halted or "interrupted"
        for task in tasks:
            if self.states[task.id] == TaskStatus.PENDING and not self.stop.is_set():
                self._skip(task, reason)

    # -- the two schedules -------------------------------------------------------------
    def run_waves(self, pool: ThreadPoolExecutor) -> None:
        for wave in self.plan.waves:
            tasks = [self.plan.tasks[t] for t in wave.task_ids]  # manifest (merge) order
            if self.halted or self.stop.is_set():
                self._skip_remaining(tasks)
                continue
            queue: list[TaskSpec] = []
            for task in tasks:
                if task.id in self.merged:
                    continue
                if task.id not in self.selected:
                    self._skip(task, "not_selected")
                elif (why := self._blocker(task)) or not self._deps_merged(task):
                    self._skip(task, why or "dependency_failed")
                else:
                    queue.append(task)
            queue.sort(key=lambda t: self.rank[t.id])  # longest estimate first
            while queue or self.running or self.reruns:
                queue += self.reruns
                self.reruns = []
                while queue and len(self.running) < self.max_concurrent:
                    if self.halted or self.stop.is_set():
                        break
                    self._launch(pool, queue.pop(0))
                if (self.halted or self.stop.is_set()) and queue:
                    self._skip_remaining(queue)
                    queue = []
                if self.running:
                    self._collect()
                    if not self.stop.is_set():
                        self._merge_ready_prefix(tasks)
            if self.stop.is_set():
                continue
            self._merge_ready_prefix(tasks)
            if self.halted:  # a merge just above asked for a rerun: nothing launches now
                self._skip_remaining(self.reruns)
            self.reruns = []
            self._finish_wave(wave)

    def _merge_ready_prefix(self, tasks: list[TaskSpec]) -> None:
        """Merge, in manifest order, every completed task whose predecessors are final.

        Merging while the rest of the wave still runs keeps the wave's end short; the
        order of the merges is the manifest order all the same.
        """
        for task in tasks:
            state = self.states[task.id]
            if state == TaskStatus.COMPLETED and task.id not in self.merged:
                self._merge(task)
            elif state in (TaskStatus.PENDING, TaskStatus.RUNNING):
                return  # an earlier task is not done yet: later ones wait for it

    def run_dag(self, pool: ThreadPoolExecutor) -> None:
        # Among ready tasks, those heading the longest (estimated) chains start first.
        order = sorted(self.plan.ordered_tasks(), key=lambda t: self.rank[t.id])
        for task in order:
            if self.states[task.id] == TaskStatus.PENDING and task.id not in self.selected:
                self._skip(task, "not_selected")
        open_waves = [w for w in self.plan.waves]
        while True:
            progressed = True
            self.reruns = []  # pending again: launched below like any ready task
            while progressed:  # cascade skips, then launch what is ready
                progressed = False
                for task in order:
                    if self.states[task.id] != TaskStatus.PENDING:
                        continue
                    if why := self._blocker(task):
                        self._skip(task, why)
                        progressed = True
                    elif (
                        self._deps_merged(task)
                        and len(self.running) < self.max_concurrent
                        and not (self.halted or self.stop.is_set())
                    ):
                        self._launch(pool, task)
            if self.halted or self.stop.is_set():
                self._skip_remaining(order)
            if not self.running and self._settle():
                continue  # a task to run again: launched above
            for wave in list(open_waves):
                if all(self._final(t) for t in wave.task_ids):
                    open_waves.remove(wave)
                    self._finish_wave(wave)
            if not self.running:
                break  # everything ready was launched above: nothing left can start
            for task in self._collect():
                if self.states[task.id] == TaskStatus.COMPLETED and not self.stop.is_set():
                    self._merge(task)

    def _settle(self) -> bool:
        """Whether the hooks' merges at the end sent tasks back to run again."""
        if self.stop.is_set():
            return False  # interrupted: --resume makes those merges
        again = [t for t in self.hooks.settle(rerun=not self.halted) if t in self.states]
        for task_id in again:
            self.states[task_id] = TaskStatus.PENDING
            self.merged.discard(task_id)
        return bool(again)

    def result(self) -> ScheduleResult:
        if self.stop.is_set():
            status = RunStatus.INTERRUPTED
        elif all(
            t in self.merged or (s == TaskStatus.SKIPPED and self.reasons.get(t) in _CHOSEN_SKIPS)
            for t, s in self.states.items()
        ) and all(s in (WaveStatus.COMPLETED, WaveStatus.PENDING) for s in self.waves.values()):
            status = RunStatus.COMPLETED
        else:
            status = RunStatus.FAILED
        return ScheduleResult(
            status, dict(self.states), set(self.merged), dict(self.reasons), dict(self.waves)
        )


def run_schedule(
    plan: Plan,
    hooks: Hooks,
    *,
    max_concurrent: int,
    mode: Mode = "waves",
    fail_fast: bool = False,
    selected: Collection[str] | None = None,
    done: Collection[str] = (),
    validated: Collection[int] = (),
    stop: threading.Event | None = None,
) -> ScheduleResult:
    """Run the plan's tasks through the hooks; return every task's and wave's final state.

    `selected`: tasks to run (default all); others not `done` are skipped with reason
    "not_selected", and their dependents with "dependency_skipped". `done`: tasks already
    merged by an earlier run. `validated`: waves whose validation already passed.
    `stop`: set by an interrupt; nothing new starts, and unstarted tasks stay pending.
    """
    run = _Run(
        plan,
        hooks,
        mode=mode,
        max_concurrent=max_concurrent,
        fail_fast=fail_fast,
        selected=plan.tasks.keys() if selected is None else selected,
        done=done,
        validated=validated,
        stop=stop or threading.Event(),
    )
    with ThreadPoolExecutor(max_workers=run.max_concurrent, thread_name_prefix="task") as pool:
        if mode == "dag":
            run.run_dag(pool)
        else:
            run.run_waves(pool)
    return run.result()
