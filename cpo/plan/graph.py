"""The task graph: dependency cycles and waves computed from dependencies.

Pure functions over `{task_id: deps}` maps; callers have already dropped unknown ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from graphlib import CycleError, TopologicalSorter


def find_cycles(deps: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Every independent dependency cycle, each as `[a, b, ..., a]` in dependency order.

    graphlib reports one cycle at a time; after each, its tasks are taken out and the
    search repeats, so disjoint cycles are all reported at once.
    """
    cycles: list[list[str]] = []
    remaining = {t: [d for d in ds if d in deps] for t, ds in deps.items()}
    while True:
        sorter: TopologicalSorter[str] = TopologicalSorter(remaining)
        try:
            sorter.prepare()
        except CycleError as exc:
            # graphlib gives [n0, n1, ..., n0] where each node depends on the next one;
            # reverse it so it reads "a needs b needs ... needs a".
            cycle = list(exc.args[1])[::-1]
            cycles.append(cycle)
            gone = set(cycle)
            remaining = {
                t: [d for d in ds if d not in gone] for t, ds in remaining.items() if t not in gone
            }
            continue
        return cycles


def topological_order(deps: Mapping[str, Sequence[str]]) -> list[str]:
    """Tasks with every dependency before its dependents. The graph must be acyclic."""
    return list(
        TopologicalSorter(
            {t: [d for d in ds if d in deps] for t, ds in deps.items()}
        ).static_order()
    )


def compute_waves(deps: Mapping[str, Sequence[str]], fixed: Mapping[str, int]) -> dict[str, int]:
    """The wave of every task: `fixed[t]` when given, else one more than its deepest dependency.

    Tasks without dependencies are in wave 1. The graph must be acyclic; unknown
    dependencies are ignored (they are reported elsewhere).
    """
    waves: dict[str, int] = {}
    for task in topological_order(deps):
        if task in fixed:
            waves[task] = fixed[task]
        else:
            waves[task] = 1 + max((waves[d] for d in deps[task] if d in waves), default=0)
    return waves


def wave_order_violations(
    deps: Mapping[str, Sequence[str]], waves: Mapping[str, int]
) -> list[tuple[str, str]]:
    """(task, dependency) pairs where the task's wave is not after its dependency's."""
    return [
        (t, d)
        for t, ds in deps.items()
        for d in ds
        if t in waves and d in waves and waves[t] <= waves[d]
    ]
