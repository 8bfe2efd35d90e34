"""Launch priority: task estimates, the ranks of both schedules, slots handed out by rank."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from plandirs import cpo_manifest, write_dir
from test_scheduler import FakeHooks, make_plan

from cpo.errors import PlanError
from cpo.manifest import load_plan
from cpo.plan import Plan, TaskSpec
from cpo.priority import bottom_levels, estimates, launch_ranks
from cpo.proc import ProcessRegistry
from cpo.scheduler import run_schedule


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
    registry = ProcessRegistry(slots=1)
    assert registry.acquire_slot(registry.ticket(0))  # the only slot is busy now
    got: list[str] = []

    def wait_for_slot(name: str, ticket: tuple[int, int]) -> None:
        if registry.acquire_slot(ticket):
            got.append(name)
            registry.release_slot()

    late_tickets = [("low", registry.ticket(9)), ("mid", registry.ticket(5))]
    best = ("best", registry.ticket(1))  # issued last, ranked first
    threads = [
        threading.Thread(target=wait_for_slot, args=item) for item in [*late_tickets, best]
    ]
    for t in threads:
        t.start()
    time.sleep(0.1)  # all three are waiting (a wrong order would show whatever the timing)
    registry.release_slot()
    for t in threads:
        t.join(timeout=10)
    assert got == ["best", "mid", "low"]


def test_equal_ranks_keep_launch_order() -> None:
    registry = ProcessRegistry(slots=1)
    first, second = registry.ticket(3), registry.ticket(3)
    assert first < second
    assert registry.acquire_slot(first)
    registry.release_slot()
    assert registry.acquire_slot(second)
