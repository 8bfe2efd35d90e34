"""A long task table is folded: `cpo status` lists at most 50 tasks, the unfinished and
failed ones first, and the live view draws no more rows than the screen holds (drawing a
row costs ~0.5 ms: 1,000 of them, 4 times a second, took more than the run's own CPU)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from cpo.run.progress import LiveProgress
from cpo.run.report import Report
from tests.runkit import cpo, make_spec

pytestmark = pytest.mark.usefixtures("fake_claude")

OK = "@script write {f} x\n@script commit add {f}\n@script marker"


def _big_report(git_repo: Path, n: int) -> tuple[Path, dict[str, str]]:
    """A real run's report, its task repeated to `n` tasks: all completed but a running
    one, a failed one and two pending ones (the report's order keeps them apart)."""
    root = make_spec(git_repo, [{"task-001": OK.format(f="a.txt")}])
    assert cpo("run", str(root), cwd=git_repo).returncode == 0
    data = json.loads((root / "report.json").read_text())
    (root / "report.journal").unlink(missing_ok=True)
    one = data["tasks"]["task-001"]
    odd = {"task-0007": "running", "task-0030": "failed", "task-0044": "pending"}
    odd["task-0058"] = "pending"
    tasks = {}
    for i in range(n):
        tid = f"task-{i:04d}"
        rec = {**one, "id": tid, "branch": f"feature/{tid}", "status": odd.get(tid, "completed")}
        tasks[tid] = rec
    data["tasks"] = tasks
    data["waves"][0]["tasks"] = list(tasks)
    (root / "report.json").write_text(json.dumps(data))
    return root, odd


def test_status_lists_the_unfinished_first_and_folds_the_rest(git_repo: Path) -> None:
    root, odd = _big_report(git_repo, 80)
    out = cpo("status", str(root), cwd=git_repo).stdout
    rows = [line for line in out.splitlines() if line.startswith("task-")]
    assert len(rows) == 49, out
    for tid in odd:  # all shown, though 3 of them are past the 49th task
        assert any(r.startswith(tid) for r in rows), (tid, out)
    assert [r.split()[0] for r in rows] == sorted(r.split()[0] for r in rows)  # report order
    assert "… 31 more tasks: 31 completed (--all lists every task)" in out
    assert "76/80 tasks completed" in out  # the totals count every task

    every = cpo("status", str(root), "--all", cwd=git_repo).stdout
    assert len([line for line in every.splitlines() if line.startswith("task-")]) == 80
    assert "more tasks" not in every


def test_the_live_view_draws_only_what_fits_the_screen(git_repo: Path) -> None:
    root, _ = _big_report(git_repo, 300)
    report = Report.model_validate_json((root / "report.json").read_text())
    screen = Console(file=io.StringIO(), height=30, width=120, force_terminal=True)
    view = LiveProgress(lambda: report, console=screen)
    screen.print(view._render())
    lines = screen.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert len(lines) <= 30, len(lines)
    assert any("running" in line for line in lines)
    assert "more tasks" in lines[-1] and "cpo status --all" in lines[-1]
