"""Coalesced report writes in a real run: few writes whatever the number of changes, and
the final state always on disk (normal end, Ctrl-C, crash)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import cpo.run.engine as engine
import cpo.run.scheduler as scheduler
from cpo.run.options import RunOptions
from cpo.run.reportwriter import ReportWriter
from tests.runkit import make_spec, report

pytestmark = pytest.mark.usefixtures("fake_claude")

OK = "@script write {f} x\n@script commit add {f}\n@script marker"


def spec(repo: Path, n: int) -> Path:
    return make_spec(repo, [{f"task-{i:03}": OK.format(f=f"f{i}.txt") for i in range(n)}])


def test_writes_do_not_grow_with_the_changes(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An interval longer than the run: every change after the first waits for the end.
    monkeypatch.setattr(ReportWriter, "FLUSH_INTERVAL", 3600.0)
    root = spec(git_repo, 6)
    versions: list[str] = []
    result = engine.execute(root, RunOptions(max_concurrent=3), on_report_write=versions.append)
    assert result.report.status == "completed"
    # the first report (before git), the first change, each task's end and each wave's
    # state (durable: --resume and `cpo status` must find them at once), the final state:
    # not one per change (6+ per task before)
    assert len(versions) <= 3 + 6 + 3
    data = report(root)
    assert data["status"] == "completed" and data["finished_at"]
    assert all(t["status"] == "completed" and t["merged"] for t in data["tasks"].values())
    assert json.loads(versions[-1]) == data


@pytest.mark.parametrize(
    ("exc", "status"), [(KeyboardInterrupt(), "interrupted"), (RuntimeError("bug"), "failed")]
)
def test_the_final_state_is_written_after_an_interrupt_or_a_crash(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch, exc: BaseException, status: str
) -> None:
    monkeypatch.setattr(ReportWriter, "FLUSH_INTERVAL", 3600.0)
    real = scheduler.run_schedule

    def then_stop(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)  # every task done and merged, in memory only so far
        raise exc

    monkeypatch.setattr(scheduler, "run_schedule", then_stop)  # the engine imports it late
    root = spec(git_repo, 3)
    with pytest.raises(type(exc)):
        engine.execute(root, RunOptions(max_concurrent=2))
    data = report(root)
    assert data["status"] == status
    assert all(t["status"] == "completed" and t["merged"] for t in data["tasks"].values())
    assert "--resume" in data["next_step"]
