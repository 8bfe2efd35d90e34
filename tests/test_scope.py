from __future__ import annotations

from cpo.plan.model import ScopeEntry
from cpo.plan.scope import ScopedTask, parse_scope, scope_conflicts


def test_parse_inline_lists_bullets_notes_and_backticks() -> None:
    body = """# Task
## Scope
CREATE: apps/users/models.py, `apps/users/tests/*.py`
MODIFY: config/urls.py            (or path.py::Class / ::func / ::Class.method)
- **MODIFY**: ./a.py::A.m
BOUNDARY:
- apps/orders/*
- **docs/**
### Notes
still in scope section, ignored prose
## Requirements
CREATE: not/scope.py
"""
    assert parse_scope(body) == (
        ScopeEntry("CREATE", "apps/users/models.py"),
        ScopeEntry("CREATE", "apps/users/tests/*.py"),
        ScopeEntry("MODIFY", "config/urls.py"),
        ScopeEntry("MODIFY", "a.py", "A.m"),
        ScopeEntry("BOUNDARY", "apps/orders/*"),
        ScopeEntry("BOUNDARY", "docs/"),
    )


def test_no_scope_section() -> None:
    assert parse_scope("# t\n## Requirements\nCREATE: x\n") == ()


def task(id: str, wave: int, *entries: ScopeEntry) -> ScopedTask:
    return ScopedTask(id, wave, f"tasks/{id}.md", entries)


def test_create_twice_across_waves() -> None:
    probs = scope_conflicts(
        [task("t1", 1, ScopeEntry("CREATE", "a.py")), task("t2", 2, ScopeEntry("CREATE", "a.py"))]
    )
    assert [str(p) for p in probs] == [
        "tasks/t2.md: Scope: CREATE a.py is also created by t1 (tasks/t1.md); a path may be "
        "created by one task only: make one of them MODIFY it in a later wave"
    ]


def test_unscoped_modify_twice_in_one_wave() -> None:
    probs = scope_conflicts(
        [task("t1", 1, ScopeEntry("MODIFY", "u.py")), task("t2", 1, ScopeEntry("MODIFY", "u.py"))]
    )
    assert len(probs) == 1 and "MODIFY u.py conflicts with t1" in str(probs[0])
    assert "tasks/t2.md" in str(probs[0]) and "whole file" in str(probs[0])


def test_unscoped_modify_in_different_waves_is_fine() -> None:
    assert (
        scope_conflicts(
            [
                task("t1", 1, ScopeEntry("MODIFY", "u.py")),
                task("t2", 2, ScopeEntry("MODIFY", "u.py")),
            ]
        )
        == []
    )


def test_unscoped_against_scoped_modify_conflicts() -> None:
    probs = scope_conflicts(
        [
            task("t1", 1, ScopeEntry("MODIFY", "u.py", "A")),
            task("t2", 1, ScopeEntry("MODIFY", "u.py")),
        ]
    )
    assert len(probs) == 1 and "one modifies the whole file" in str(probs[0])


def test_nested_scoped_modify_conflicts() -> None:
    probs = scope_conflicts(
        [
            task("t1", 1, ScopeEntry("MODIFY", "u.py", "A")),
            task("t2", 1, ScopeEntry("MODIFY", "u.py", "A.m")),
        ]
    )
    assert len(probs) == 1 and "::A and ::A.m overlap" in str(probs[0])


def test_disjoint_scoped_modify_is_fine() -> None:
    assert (
        scope_conflicts(
            [
                task("t1", 1, ScopeEntry("MODIFY", "u.py", "A")),
                task("t2", 1, ScopeEntry("MODIFY", "u.py", "AB")),
                task("t3", 1, ScopeEntry("MODIFY", "u.py", "B.m")),
            ]
        )
        == []
    )


def test_same_task_twice_is_not_a_conflict() -> None:
    assert (
        scope_conflicts(
            [
                task(
                    "t1",
                    1,
                    ScopeEntry("MODIFY", "u.py"),
                    ScopeEntry("MODIFY", "u.py", "A"),
                    ScopeEntry("CREATE", "n.py"),
                    ScopeEntry("CREATE", "n.py"),
                )
            ]
        )
        == []
    )


def test_nesting_found_in_either_order_and_at_depth() -> None:
    probs = scope_conflicts(
        [
            task("t1", 1, ScopeEntry("MODIFY", "u.py", "A.b.c")),
            task("t2", 1, ScopeEntry("MODIFY", "u.py", "A")),
            task("t3", 1, ScopeEntry("MODIFY", "u.py", "A.b.c")),
            task("t4", 1, ScopeEntry("MODIFY", "u.py", "B")),
        ]
    )
    text = [str(p) for p in probs]
    assert len(text) == 3  # t2 vs t1; t3 vs t1 (same symbol) and vs t2 (ancestor)
    assert "tasks/t2.md" in text[0] and "::A and ::A.b.c overlap" in text[0]
    assert "tasks/t3.md" in text[1] and "conflicts with t1" in text[1]
    assert "tasks/t3.md" in text[2] and "conflicts with t2" in text[2]


def test_many_disjoint_symbols_in_one_file() -> None:
    tasks = [task(f"t{i}", 1, ScopeEntry("MODIFY", "reg.py", f"register_{i}")) for i in range(500)]
    assert scope_conflicts(tasks) == []
