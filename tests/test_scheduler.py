"""The scheduler alone, with fake hooks: order, limits, cascades, fail-fast, DAG starts."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from cpo.plan.model import Plan, TaskSpec, ValidationStep, WaveSpec
from cpo.run.scheduler import TaskOutcome, run_schedule
from cpo.run.states import TaskStatus, WaveStatus


def make_plan(spec: dict[str, tuple[int, list[str]]], validation: bool = True) -> Plan:
    tasks = {
        tid: TaskSpec(id=tid, wave=wave, prompt="p", prompt_source="x", deps=tuple(deps))
        for tid, (wave, deps) in spec.items()
    }
    numbers = sorted({t.wave for t in tasks.values()})
    waves = tuple(
        WaveSpec(
            n,
            tuple(t for t in tasks if tasks[t].wave == n),
            (ValidationStep("shell", "true"),) if validation else (),
        )
        for n in numbers
    )
    return Plan(root=Path("/nonexistent"), spec_id="TS-1", waves=waves, tasks=tasks)


class FakeHooks:
    def __init__(
        self,
        fail: set[str] = frozenset(),
        conflict: set[str] = frozenset(),
        bad_waves: set[int] = frozenset(),
        delays: dict[str, float] | None = None,
    ) -> None:
        self.fail, self.conflict, self.bad_waves = fail, conflict, bad_waves
        self.delays = delays or {}
        self.lock = threading.Lock()
        self.events: list[tuple[str, str]] = []
        self.active = 0
        self.max_active = 0
        self.stopped = threading.Event()
        self.ranks: dict[str, int] = {}

    def _log(self, kind: str, what: str) -> None:
        with self.lock:
            self.events.append((kind, what))

    def task_launched(self, task: TaskSpec, rank: int) -> None:
        self.ranks[task.id] = rank
        self._log("launch", task.id)

    def run_task(self, task: TaskSpec) -> TaskOutcome:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        self._log("start", task.id)
        # Wait either for the task's time or for a fail-fast stop, like an agent would.
        interrupted = self.stopped.wait(self.delays.get(task.id, 0.01))
        with self.lock:
            self.active -= 1
        self._log("end", task.id)
        if interrupted and task.id not in self.fail:
            return TaskOutcome(ok=False, reason="interrupted", interrupted=True)
        if task.id in self.fail:
            return TaskOutcome(ok=False, reason="exit_code_1")
        return TaskOutcome(ok=True)

    def merge_task(self, task: TaskSpec) -> bool:
        self._log("merge", task.id)
        return task.id not in self.conflict

    def validate_wave(self, wave: WaveSpec) -> bool:
        self._log("validate", str(wave.number))
        return wave.number not in self.bad_waves

    def task_skipped(self, task: TaskSpec, reason: str) -> None:
        self._log("skip", f"{task.id}:{reason}")

    def wave_changed(self, wave: WaveSpec, state: WaveStatus, note: str | None) -> None:
        self._log("wave", f"{wave.number}:{state.value}")

    def stop_running(self) -> None:
        self.stopped.set()

    def settle(self, rerun: bool) -> list[str]:
        self._log("settle", str(rerun))
        return []


def index(events: list[tuple[str, str]], kind: str, what: str) -> int:
    return events.index((kind, what))


def test_waves_run_in_order_and_merge_in_manifest_order() -> None:
    plan = make_plan({"a": (1, []), "b": (1, []), "c": (2, ["a", "b"])})
    hooks = FakeHooks(delays={"a": 0.2, "b": 0.01})
    result = run_schedule(plan, hooks, max_concurrent=2)
    assert result.status == "completed"
    assert all(s == TaskStatus.COMPLETED for s in result.tasks.values())
    assert result.merged == set(result.tasks)
    ev = hooks.events
    # b ends first, but merges follow manifest order: a then b.
    assert index(ev, "merge", "a") < index(ev, "merge", "b")
    assert index(ev, "validate", "1") < index(ev, "start", "c")
    assert result.waves == {1: WaveStatus.COMPLETED, 2: WaveStatus.COMPLETED}


def test_concurrency_limit_is_respected() -> None:
    plan = make_plan({f"t{i}": (1, []) for i in range(8)})
    hooks = FakeHooks(delays={f"t{i}": 0.05 for i in range(8)})
    run_schedule(plan, hooks, max_concurrent=3)
    assert hooks.max_active == 3


def test_dependents_of_failed_task_skipped_independent_go_on() -> None:
    plan = make_plan(
        {"a": (1, []), "b": (1, []), "c": (2, ["a"]), "d": (2, ["b"]), "e": (3, ["c"])}
    )
    hooks = FakeHooks(fail={"a"})
    result = run_schedule(plan, hooks, max_concurrent=2)
    assert result.status == "failed"
    assert result.tasks["a"] == TaskStatus.FAILED
    assert result.reasons["c"] == "dependency_failed"
    assert result.reasons["e"] == "dependency_failed"  # the cascade goes on
    assert result.tasks["d"] == TaskStatus.COMPLETED and "d" in result.merged
    assert result.waves[1] == WaveStatus.FAILED
    assert ("validate", "1") not in hooks.events  # a wave with a failed task is not validated


def test_conflict_fails_task_and_wave() -> None:
    plan = make_plan({"a": (1, []), "b": (1, []), "c": (2, ["b"])})
    result = run_schedule(plan, FakeHooks(conflict={"b"}), max_concurrent=2)
    assert result.reasons["b"] == "conflict"
    assert result.reasons["c"] == "dependency_failed"
    assert result.waves[1] == WaveStatus.FAILED


def test_failed_validation_stops_the_run() -> None:
    plan = make_plan({"a": (1, []), "b": (2, ["a"]), "c": (2, [])})
    hooks = FakeHooks(bad_waves={1})
    result = run_schedule(plan, hooks, max_concurrent=2)
    assert result.status == "failed"
    assert result.waves[1] == WaveStatus.FAILED
    assert result.reasons["c"] == "validation"
    assert not any(e == ("start", "c") for e in hooks.events)


def test_fail_fast_stops_running_and_launching() -> None:
    plan = make_plan({"a": (1, []), "b": (1, []), "c": (1, []), "d": (2, [])})
    hooks = FakeHooks(fail={"a"}, delays={"a": 0.01, "b": 5.0, "c": 5.0})
    result = run_schedule(plan, hooks, max_concurrent=2, fail_fast=True)
    assert result.tasks["b"] == TaskStatus.INTERRUPTED  # stopped mid-run
    assert result.reasons["c"] == "fail_fast"  # never started
    assert result.reasons["d"] == "fail_fast"
    assert hooks.stopped.is_set()


def test_dag_starts_task_before_whole_previous_wave_ends() -> None:
    plan = make_plan({"a": (1, []), "slow": (1, []), "b": (2, ["a"])}, validation=False)
    hooks = FakeHooks(delays={"a": 0.01, "slow": 0.5, "b": 0.01})
    result = run_schedule(plan, hooks, max_concurrent=3, mode="dag")
    assert result.status == "completed"
    ev = hooks.events
    assert index(ev, "start", "b") < index(ev, "end", "slow")
    assert index(ev, "merge", "a") < index(ev, "start", "b")


def test_dag_validation_runs_when_wave_merged() -> None:
    plan = make_plan({"a": (1, []), "b": (2, ["a"])})
    hooks = FakeHooks()
    run_schedule(plan, hooks, max_concurrent=2, mode="dag")
    assert ("validate", "1") in hooks.events and ("validate", "2") in hooks.events


def test_selected_and_done() -> None:
    plan = make_plan({"a": (1, []), "b": (1, []), "c": (2, ["a"]), "d": (2, ["b"])})
    hooks = FakeHooks()
    result = run_schedule(
        plan, hooks, max_concurrent=2, selected={"b", "c", "d"}, done={"a"}, validated={1}
    )
    assert ("start", "a") not in hooks.events
    assert result.tasks["a"] == TaskStatus.COMPLETED and "a" in result.merged
    assert result.status == "completed"
    result = run_schedule(plan, FakeHooks(), max_concurrent=2, selected={"b", "c", "d"})
    assert result.reasons["a"] == "not_selected"
    assert result.reasons["c"] == "dependency_skipped"


def test_stop_leaves_unstarted_tasks_pending() -> None:
    plan = make_plan({"a": (1, []), "b": (1, []), "c": (2, [])})
    stop = threading.Event()
    hooks = FakeHooks(delays={"a": 5.0, "b": 5.0})

    def interrupt() -> None:
        time.sleep(0.1)
        stop.set()
        hooks.stop_running()

    threading.Thread(target=interrupt).start()
    result = run_schedule(plan, hooks, max_concurrent=1, stop=stop)
    assert result.status == "interrupted"
    assert result.tasks["a"] == TaskStatus.INTERRUPTED
    assert result.tasks["b"] == TaskStatus.PENDING
    assert result.tasks["c"] == TaskStatus.PENDING


def test_dag_starts_the_head_of_the_longest_chain_first() -> None:
    plan = make_plan(
        {"a": (1, []), "b": (1, []), "c": (1, []), "x": (2, ["c"]), "y": (3, ["x"])},
        validation=False,
    )
    hooks = FakeHooks()
    run_schedule(plan, hooks, max_concurrent=1, mode="dag")
    launches = [what for kind, what in hooks.events if kind == "launch"]
    assert launches[0] == "c"  # it heads c -> x -> y
    assert launches.index("x") < launches.index("a")  # the chain goes on before the rest


def test_waves_merge_a_done_prefix_while_the_wave_still_runs() -> None:
    plan = make_plan({"a": (1, []), "b": (1, []), "slow": (1, [])}, validation=False)
    hooks = FakeHooks(delays={"a": 0.01, "b": 0.05, "slow": 0.5})
    run_schedule(plan, hooks, max_concurrent=3)
    ev = hooks.events
    assert index(ev, "merge", "a") < index(ev, "merge", "b") < index(ev, "end", "slow")
    assert index(ev, "end", "slow") < index(ev, "merge", "slow")


class SettleOnce(FakeHooks):
    """Fake hooks whose first end-of-schedule merge sends task `b` back to run again."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = False

    def settle(self, rerun: bool) -> list[str]:
        super().settle(rerun)
        if self.sent or not rerun:
            return []
        self.sent = True
        return ["b"]


def test_dag_runs_again_what_the_merges_at_the_end_send_back() -> None:
    plan = make_plan({"a": (1, []), "b": (1, ["a"])})
    hooks = SettleOnce()
    result = run_schedule(plan, hooks, max_concurrent=2, mode="dag")
    assert result.status == "completed" and result.merged == {"a", "b"}
    ev = hooks.events
    assert [what for kind, what in ev if kind == "start"] == ["a", "b", "b"]
    # Settled before its wave finishes, then again once the rerun is merged; validated once.
    first, second = (i for i, e in enumerate(ev) if e[0] == "settle")
    assert first < ev.index(("merge", "b"), first) < second < ev.index(("validate", "1"))
    assert ev.count(("validate", "1")) == 1


def test_dag_settles_without_reruns_once_halted() -> None:
    plan = make_plan({"a": (1, []), "b": (1, [])}, validation=False)
    hooks = SettleOnce()
    hooks.fail = {"a"}
    result = run_schedule(plan, hooks, max_concurrent=1, mode="dag", fail_fast=True)
    assert ("settle", "False") in hooks.events and result.status == "failed"
