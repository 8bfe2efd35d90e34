"""Launch priority: task estimates, the ranks of both schedules, slots handed out by rank."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from plandirs import cpo_manifest, write_dir
from test_scheduler import FakeHooks, make_plan

from cpo.errors import PlanError
from cpo.plan.load import load_plan
from cpo.plan.model import Plan, TaskSpec
from cpo.run.priority import bottom_levels, estimates, launch_ranks
from cpo.run.scheduler import run_schedule
from cpo.run.slots import Slots
from tests.runkit import cpo, make_spec


def with_estimates(plan: Plan, est: dict[str, float]) -> Plan:
    tasks = {
        tid: TaskSpec(**{**t.__dict__, "estimate": est.get(tid)}) for tid, t in plan.tasks.items()
    }
    return Plan(root=plan.root, spec_id=plan.spec_id, waves=plan.waves, tasks=tasks)


def order(ranks: dict[str, int]) -> list[str]:
    return sorted(ranks, key=ranks.__getitem__)


# -- estimates in the input files ------------------------------------------------------
def test_estimate_is_read_from_frontmatter_and_manifest(tmp_path: Path) -> None:
    root = write_dir(
        tmp_path / "p",
        manifest=cpo_manifest([{"id": "task-001", "estimate": "15m"}, {"id": "task-002"}]),
        tasks={
            "task-001.md": {"id": "task-001"},
            "task-002.md": {"id": "task-002", "estimate": 90},
        },
    )
    plan = load_plan(root)
    assert plan.tasks["task-001"].estimate == 900.0
    assert plan.tasks["task-002"].estimate == 90.0


@pytest.mark.parametrize("value", ["soon", 0, -5, True])
def test_a_bad_estimate_names_file_and_field(tmp_path: Path, value: object) -> None:
    root = write_dir(
        tmp_path / "p",
        manifest=cpo_manifest(["task-001"]),
        tasks={"task-001.md": {"id": "task-001", "estimate": value}},
    )
    with pytest.raises(PlanError) as info:
        load_plan(root)
    found = [str(p) for p in info.value.problems]
    assert any("tasks/task-001.md" in p and "estimate" in p for p in found), found


def test_manifest_and_task_file_must_agree_on_the_estimate(tmp_path: Path) -> None:
    root = write_dir(
        tmp_path / "p",
        manifest=cpo_manifest([{"id": "task-001", "estimate": "1h"}]),
        tasks={"task-001.md": {"id": "task-001", "estimate": "2h"}},
    )
    with pytest.raises(PlanError) as info:
        load_plan(root)
    found = [str(p) for p in info.value.problems]
    assert any("estimate" in p and "disagrees" in p for p in found), found


# -- ranks ------------------------------------------------------------------------------
CHAIN_AND_SINGLES = {"a": (1, []), "b": (1, []), "c": (1, []), "x": (2, ["c"]), "y": (3, ["x"])}


def test_without_estimates_dag_ranks_by_chain_height_then_manifest_order() -> None:
    plan = make_plan(CHAIN_AND_SINGLES, validation=False)
    assert order(launch_ranks(plan, "dag")) == ["c", "x", "a", "b", "y"]
    assert order(launch_ranks(plan, "waves")) == ["a", "b", "c", "x", "y"]


def test_estimates_outweigh_chain_length_in_dag_mode() -> None:
    # One long task beats a chain of three short ones: it sets the makespan.
    plan = with_estimates(
        make_plan(CHAIN_AND_SINGLES, validation=False),
        {"a": 10, "b": 600, "c": 60, "x": 60, "y": 60},
    )
    assert bottom_levels(plan, estimates(plan))["c"] == 180
    assert order(launch_ranks(plan, "dag"))[:2] == ["b", "c"]


def test_waves_start_the_longest_estimate_of_a_wave_first() -> None:
    plan = with_estimates(
        make_plan(CHAIN_AND_SINGLES, validation=False), {"a": 10, "b": 600, "c": 60}
    )
    # Within wave 1 the longest first; waves stay in order.
    assert order(launch_ranks(plan, "waves")) == ["b", "c", "a", "x", "y"]


def test_a_task_without_estimate_weighs_the_median_of_the_others() -> None:
    plan = with_estimates(make_plan({"a": (1, []), "b": (1, []), "c": (1, [])}), {"a": 10, "b": 30})
    assert estimates(plan) == {"a": 10, "b": 30, "c": 20}


def test_the_scheduler_launches_ready_tasks_by_rank_and_passes_the_rank() -> None:
    plan = with_estimates(
        make_plan({"a": (1, []), "b": (1, []), "c": (1, [])}, validation=False),
        {"a": 1, "b": 5, "c": 3},
    )
    hooks = FakeHooks()
    run_schedule(plan, hooks, max_concurrent=1, mode="waves")
    launches = [what for kind, what in hooks.events if kind == "launch"]
    assert launches == ["b", "c", "a"]
    assert hooks.ranks == {"b": 0, "c": 1, "a": 2}
    # Merges stay in manifest order whatever the launch order.
    assert [what for kind, what in hooks.events if kind == "merge"] == ["a", "b", "c"]


# -- agent slots go by rank ---------------------------------------------------------------
def test_a_better_ranked_ticket_overtakes_waiting_ones() -> None:
    slots = Slots(1, threading.Event())
    assert slots.acquire(slots.ticket(0))  # the only slot is busy now
    got: list[str] = []

    def wait_for_slot(name: str, ticket: tuple[int, int]) -> None:
        if slots.acquire(ticket):
            got.append(name)
            slots.release()

    late_tickets = [("low", slots.ticket(9)), ("mid", slots.ticket(5))]
    best = ("best", slots.ticket(1))  # issued last, ranked first
    threads = [threading.Thread(target=wait_for_slot, args=item) for item in [*late_tickets, best]]
    for t in threads:
        t.start()
    time.sleep(0.1)  # all three are waiting (a wrong order would show whatever the timing)
    slots.release()
    for t in threads:
        t.join(timeout=10)
    assert got == ["best", "mid", "low"]


def test_equal_ranks_keep_launch_order() -> None:
    slots = Slots(1, threading.Event())
    first, second = slots.ticket(3), slots.ticket(3)
    assert first < second
    assert slots.acquire(first)
    slots.release()
    assert slots.acquire(second)


# -- a finished task's slot is kept for the task its merge unblocks ------------------------
def waiter(slots: Slots, ticket: tuple[int, int], got: list[str], name: str) -> threading.Thread:
    def run() -> None:
        if slots.acquire(ticket):
            got.append(name)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_kept_slot_waits_for_its_ticket_not_for_lower_ranks() -> None:
    slots = Slots(1, threading.Event())
    assert slots.acquire(slots.ticket(0))
    got: list[str] = []
    low = waiter(slots, slots.ticket(5), got, "low")
    slots.release(keep_for=1)  # the finished task's dependent, rank 1, is on its way
    time.sleep(0.2)
    assert got == []  # rank 5 may not take the slot kept for rank 1
    dependent = waiter(slots, slots.ticket(1), got, "dependent")
    dependent.join(timeout=10)
    assert got == ["dependent"]
    slots.release()
    low.join(timeout=10)
    assert got == ["dependent", "low"]


def test_no_slot_is_kept_when_a_waiting_task_outranks_the_dependent() -> None:
    slots = Slots(1, threading.Event())
    assert slots.acquire(slots.ticket(0))
    got: list[str] = []
    best = waiter(slots, slots.ticket(2), got, "best")
    slots.release(keep_for=7)
    best.join(timeout=10)
    assert got == ["best"]


def test_an_unneeded_reservation_is_dropped_or_lapses(monkeypatch: pytest.MonkeyPatch) -> None:
    slots = Slots(1, threading.Event())
    assert slots.acquire(slots.ticket(0))
    got: list[str] = []
    low = waiter(slots, slots.ticket(5), got, "low")
    slots.release(keep_for=1)
    slots.unreserve(1)  # e.g. the finished task's merge conflicted
    low.join(timeout=10)
    assert got == ["low"]

    monkeypatch.setattr("cpo.run.slots.RESERVATION_SECONDS", 0.3)
    later = waiter(slots, slots.ticket(6), got, "later")
    slots.release(keep_for=2)  # nobody comes for it: the waiter gets it when it lapses
    later.join(timeout=10)
    assert got == ["low", "later"]


def test_a_reservation_holds_one_slot_only() -> None:
    slots = Slots(2, threading.Event())
    assert slots.acquire(slots.ticket(0)) and slots.acquire(slots.ticket(0))
    slots.release(keep_for=1)
    slots.release()
    got: list[str] = []
    waiter(slots, slots.ticket(5), got, "low").join(timeout=10)
    assert got == ["low"]


@pytest.mark.usefixtures("fake_claude")
def test_dag_run_gives_the_freed_slot_to_the_unblocked_critical_task(git_repo: Path) -> None:
    def ok(name: str) -> str:
        return f"@script write {name} x\n@script commit add {name}\n@script marker"

    root = make_spec(
        git_repo,
        [{"task-a": ok("a.txt"), "task-b": ok("b.txt")}, {"task-c": ok("c.txt")}],
        deps={"task-c": ["task-a"]},
        estimates={"task-a": "1m", "task-b": "1s", "task-c": "10m"},
    )
    proc = cpo("run", str(root), "--schedule", "dag", "-j", "1", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    started = [
        line.split("task=")[1].split()[0]
        for line in proc.stdout.splitlines()
        if line.startswith("[PROGRESS]") and "status=started" in line
    ]
    # task-b was waiting for the only slot when task-a ended, but task-c (unblocked by
    # task-a's merge, estimated 10 minutes) outranks it.
    assert started == ["task-a", "task-c", "task-b"]


@pytest.mark.usefixtures("fake_claude")
def test_dry_run_shows_the_launch_order(git_repo: Path) -> None:
    root = make_spec(
        git_repo,
        [{"task-a": "a", "task-b": "b"}, {"task-c": "c"}],
        deps={"task-c": ["task-a"]},
        estimates={"task-a": "1m", "task-b": "5m", "task-c": "10m"},
    )
    dag = cpo("run", str(root), "--dry-run", "--schedule", "dag", cwd=git_repo)
    assert "launch order among ready tasks (by estimates): task-a, task-c, task-b" in dag.stdout
    waves = cpo("run", str(root), "--dry-run", cwd=git_repo)
    assert "launch order within each wave (by estimates): task-b, task-a, task-c" in waves.stdout


def test_successor_rank_names_the_task_a_merge_unblocks_unless_a_wave_validates() -> None:
    # The hooks' oracle alone, on a report as the run keeps it.
    from cpo.run.hooks import successor_rank
    from cpo.run.report import Report, TaskRecord, WaveRecord
    from cpo.run.states import WaveStatus

    plan = make_plan({"a": (1, []), "b": (1, []), "c": (2, ["a", "b"]), "d": (2, ["a"])})
    tasks = {t: TaskRecord(id=t, wave=plan.tasks[t].wave) for t in plan.tasks}
    waves = [WaveRecord(number=1, status=WaveStatus.RUNNING), WaveRecord(number=2)]
    report = Report(
        cpo_version="0", spec_id="x", parallel_dir="/x", started_at="t", tasks=tasks, waves=waves
    )
    dependents = {"a": ["c", "d"], "b": ["c"], "c": [], "d": []}
    rank = launch_ranks(plan, "dag")

    def best_after(task: str) -> int | None:
        return successor_rank(plan, report, dependents, rank, plan.tasks[task])

    # a's merge unblocks d only (c still needs b).
    assert best_after("a") == rank["d"]
    tasks["b"].merged = True
    assert best_after("a") == min(rank["c"], rank["d"])
    waves[0].status = WaveStatus.VALIDATING  # merges wait for the validation: keep no slot
    assert best_after("a") is None
