from __future__ import annotations

from cpo.plan.graph import compute_waves, find_cycles, topological_order, wave_order_violations


def test_waves_are_longest_path_plus_one() -> None:
    deps = {"a": [], "b": ["a"], "c": ["b", "a"], "d": []}
    assert compute_waves(deps, {}) == {"a": 1, "b": 2, "c": 3, "d": 1}


def test_fixed_waves_push_dependents() -> None:
    assert compute_waves({"a": [], "b": ["a"]}, {"a": 4}) == {"a": 4, "b": 5}


def test_unknown_deps_are_ignored() -> None:
    assert compute_waves({"a": ["zzz"]}, {}) == {"a": 1}


def test_cycles_name_every_task_in_dependency_order() -> None:
    cycles = find_cycles({"a": ["b"], "b": ["c"], "c": ["a"], "x": ["x"], "ok": ["a"]})
    assert {frozenset(c) for c in cycles} == {frozenset("abc"), frozenset("x")}
    abc = next(c for c in cycles if len(c) == 4)
    # each task needs the next one in the list
    assert all(abc[i + 1] in {"a": ["b"], "b": ["c"], "c": ["a"]}[abc[i]] for i in range(3))
    for cycle in cycles:
        assert cycle[0] == cycle[-1]


def test_no_cycles() -> None:
    assert find_cycles({"a": [], "b": ["a"]}) == []


def test_topological_order_and_violations() -> None:
    deps = {"b": ["a"], "a": []}
    assert topological_order(deps) == ["a", "b"]
    assert wave_order_violations(deps, {"a": 2, "b": 2}) == [("b", "a")]
    assert wave_order_violations(deps, {"a": 1, "b": 2}) == []
