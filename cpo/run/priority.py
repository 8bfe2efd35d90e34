"""Which ready task starts first: launch ranks for both schedules (pure functions).

Agent time is what a run is made of, and its length is unknown to cpo unless the task
says (`estimate`). The rules are the classic list-scheduling ones, measured against
random DAGs in bench/bench_makespan.py:

- `--schedule dag`: a ready task heading a longer remaining path goes first (the
  "bottom level": its estimate plus the longest estimated chain of its dependents). A
  long chain left for last sets the makespan; with no estimates every task counts as
  one unit and this is the height of the chain it heads.
- `--schedule waves`: within a wave the longest estimate goes first (LPT), so the wave's
  stragglers start early and its barrier comes sooner; without estimates, manifest order.

Ties keep manifest order. Merges do not follow these ranks: they stay in manifest order.
"""

from __future__ import annotations

import statistics
from typing import Literal

from cpo.plan.model import Plan

Mode = Literal["waves", "dag"]


def estimates(plan: Plan) -> dict[str, float]:
    """Each task's estimated seconds; a task without one gets the median of the others.

    With no estimate anywhere every task weighs 1: ranks then depend on the graph only.
    """
    known = [t.estimate for t in plan.tasks.values() if t.estimate is not None]
    default = statistics.median(known) if known else 1.0
    return {t.id: t.estimate if t.estimate is not None else default for t in plan.tasks.values()}


def bottom_levels(plan: Plan, weight: dict[str, float]) -> dict[str, float]:
    """For each task, its weight plus the heaviest chain of tasks that depend on it."""
    dependents = plan.dependents()
    level: dict[str, float] = {}
    for task in reversed(plan.ordered_tasks()):  # dependents come in later waves
        level[task.id] = weight[task.id] + max((level[d] for d in dependents[task.id]), default=0)
    return level


def launch_ranks(plan: Plan, mode: Mode) -> dict[str, int]:
    """Task id -> its rank (0 first) among tasks ready at the same time."""
    ordered = plan.ordered_tasks()
    position = {t.id: i for i, t in enumerate(ordered)}
    weight = estimates(plan)
    if mode == "dag":
        level = bottom_levels(plan, weight)
        ranked = sorted(ordered, key=lambda t: (-level[t.id], position[t.id]))
    else:
        ranked = sorted(ordered, key=lambda t: (t.wave, -weight[t.id], position[t.id]))
    return {t.id: i for i, t in enumerate(ranked)}
