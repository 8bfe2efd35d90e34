"""Did-you-mean: one rule for every suggestion cpo makes."""

from __future__ import annotations

import pytest

from cpo.suggest import closest, did_you_mean


@pytest.mark.parametrize(
    ("name", "known", "meant"),
    [
        ("task-02", ["task-001", "task-002", "task-010"], "task-002"),
        ("claud", ["claude", "codex"], "claude"),
        ("max_worker", ["max_workers", "fail_fast"], "max_workers"),
        ("promt_file", ["prompt_file", "model"], "prompt_file"),
        # keys other tools write are kept without a false suggestion
        ("title", ["file", "id"], None),
        ("tags", ["tasks", "waves"], None),
        ("total_tasks", ["tasks"], None),
    ],
)
def test_closest(name: str, known: list[str], meant: str | None) -> None:
    assert closest(name, known) == meant


def test_did_you_mean_text() -> None:
    assert did_you_mean("codx", iter(["codex"])) == "; did you mean 'codex'?"
    assert did_you_mean("zzz", ["codex"]) == ""
