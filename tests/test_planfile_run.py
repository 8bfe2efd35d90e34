"""`cpo run PLAN.md` end to end: a plan file's streams run side by side with the scripted
claude, statuses written back into the plan and nothing else changed."""

from __future__ import annotations

import difflib
import json
from datetime import date
from pathlib import Path

import pytest

from cpo.planfile.doc import parse_plan
from cpo.planfile.edit import without_statuses
from tests.conftest import git
from tests.runkit import cpo

pytestmark = pytest.mark.usefixtures("fake_claude")

# CRLF, an aligned table with trailing spaces, an extra column, a section at another level.
PLAN = (
    "# Build plan\r\n"
    "\r\n"
    "## Progress Tracking\r\n"
    "\r\n"
    "| Task | Stream | Name           | Status        | Date | Owner |  \r\n"
    "|------|--------|----------------|---------------|------|-------|\r\n"
    "| A1   | amd    | amd first      | TASK:PENDING  |      | ann   |  \r\n"
    "| A2   | amd    | amd second     | TASK:PENDING  |      | ann   |\r\n"
    "| J1   | jetson | jetson first   | TASK:PENDING  |      | joe   |\r\n"
    "| J2   | jetson | jetson second  | TASK:PENDING  |      | joe   |\r\n"
    "| R0   |        | done already   | TASK:COMPLETE | 2026-01-12 | ann |\r\n"
    "\r\n"
    "## Task A1: amd first\r\n"
    "**Status**: TASK:PENDING\r\n"
    "@script sleep 1.5\r\n"
    "@script write amd.txt one\r\n"
    "@script commit amd one\r\n"
    "@script marker\r\n"
    "\r\n"
    "### Task A2: amd second\r\n"
    "**Status**: TASK:PENDING\r\n"
    "@script require amd.txt\r\n"
    "@script write amd2.txt two\r\n"
    "@script commit amd two\r\n"
    "@script marker\r\n"
    "\r\n"
    "## Task J1: jetson first\r\n"
    "**Status**: TASK:PENDING\r\n"
    "@script sleep 1.5\r\n"
    "@script write jetson.txt one\r\n"
    "@script commit jetson one\r\n"
    "@script marker\r\n"
    "\r\n"
    "## Task J2: jetson second\r\n"
    "**Status**: TASK:PENDING\r\n"
    "@script require jetson.txt\r\n"
    "@script marker\r\n"
    "\r\n"
    "## Task R0: done already\r\n"
    "**Status**: TASK:COMPLETE\r\n"
    "@script crash\r\n"
)


def _commit_plan(repo: Path, text: str) -> Path:
    path = repo / "PLAN.md"
    path.write_bytes(text.encode("utf-8"))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "plan")
    return path


def _progress(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("[PROGRESS]")]


def _changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    a, b = before.split("\n"), after.split("\n")
    assert len(a) == len(b)
    return [(x, y) for x, y in zip(a, b, strict=True) if x != y]


def test_two_streams_run_side_by_side_and_write_back_only_statuses(git_repo: Path) -> None:
    plan = _commit_plan(git_repo, PLAN)
    proc = cpo("run", str(plan), "--max-concurrent", "2", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = _progress(proc.stdout)
    # Both first tasks started before either finished: the streams overlapped.
    events = [line for line in lines if "task=A1" in line or "task=J1" in line]
    assert [e.split("status=")[1].split()[0] for e in events[:2]] == ["started", "started"]
    assert "[PROGRESS] wave=1 task=A1 status=started stream=amd" in lines
    assert not any("task=R0" in line for line in lines)  # done rows are not run again
    after = plan.read_bytes().decode("utf-8")
    # Only status and date cells and status lines changed; CRLF and alignment kept.
    changed = _changed_lines(PLAN, after)
    diff = "".join(difflib.unified_diff(PLAN.splitlines(True), after.splitlines(True)))
    assert len(changed) == 8, diff
    assert all(old.endswith("\r") and new.endswith("\r") for old, new in changed)
    assert without_statuses(after) == without_statuses(PLAN), diff
    today = date.today().isoformat()
    assert f"| A1   | amd    | amd first      | TASK:COMPLETE | {today} | ann   |  \r\n" in after
    doc = parse_plan(after)
    assert {r.task_id: r.status for r in doc.rows} == {
        "A1": "TASK:COMPLETE",
        "A2": "TASK:COMPLETE",
        "J1": "TASK:COMPLETE",
        "J2": "TASK:COMPLETE",
        "R0": "TASK:COMPLETE",
    }
    # Each stream's second task saw its first task's commit (`require` would fail).
    report = json.loads((git_repo / "PLAN.cpo" / "report.json").read_text())
    assert report["tasks"]["A2"]["status"] == "completed"
    assert (git_repo / "PLAN.cpo" / "logs" / "A1.log").is_file()
    files = git(git_repo, "ls-tree", "-r", "--name-only", "integration/PLAN").splitlines()
    assert {"amd.txt", "amd2.txt", "jetson.txt"} <= set(files)
    # The plan's status changes and the run's folder are cpo's own: the tree counts clean.
    assert git(git_repo, "status", "--porcelain") == "M PLAN.md\n?? PLAN.cpo/".strip()
    again = cpo("run", str(plan), "--resume", cwd=git_repo)  # nothing to do, no "local changes"
    assert again.returncode == 0, again.stdout + again.stderr


def test_a_failing_task_stops_only_its_stream(git_repo: Path) -> None:
    failing = PLAN.replace(
        "@script sleep 1.5\r\n@script write amd.txt", "@script exit 3\r\n@script write amd.txt"
    )
    plan = _commit_plan(git_repo, failing)
    proc = cpo("run", str(plan), "--max-concurrent", "2", cwd=git_repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    statuses = {r.task_id: r.status for r in parse_plan(plan.read_text()).rows}
    assert statuses == {
        "A1": "TASK:FAILED",
        "A2": "TASK:PENDING",
        "J1": "TASK:COMPLETE",
        "J2": "TASK:COMPLETE",
        "R0": "TASK:COMPLETE",
    }
    report = json.loads((git_repo / "PLAN.cpo" / "report.json").read_text())
    assert report["tasks"]["A1"]["status"] == "failed"
    assert report["tasks"]["A2"]["reason"] == "dependency_failed"


def test_stream_option_runs_only_the_streams_named(git_repo: Path) -> None:
    plan = _commit_plan(git_repo, PLAN)
    proc = cpo("run", str(plan), "--stream", "jetson", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    statuses = {r.task_id: r.status for r in parse_plan(plan.read_text()).rows}
    assert statuses["A1"] == statuses["A2"] == "TASK:PENDING"
    assert statuses["J1"] == statuses["J2"] == "TASK:COMPLETE"
    bad = cpo("run", str(plan), "--stream", "jetsn", cwd=git_repo)
    assert bad.returncode == 2
    assert "did you mean 'jetson'" in bad.stderr
