"""`cpo run PLAN.md` end to end: a plan file's streams run side by side with the scripted
claude, statuses written back into the plan and nothing else changed."""

from __future__ import annotations

import difflib
import json
import signal
import subprocess
import sys
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
    # Each stream ran on its own branch and worktree; its second task started at its first
    # task's head (not from the integration branch, merged into only at the end).
    tasks = report["tasks"]
    assert {tasks[t]["branch"] for t in ("A1", "A2")} == {"stream/PLAN/amd"}
    assert {Path(tasks[t]["worktree"]).name for t in ("J1", "J2")} == {"stream-jetson"}
    assert tasks["A2"]["start_point"] == tasks["A1"]["head"]
    assert tasks["J2"]["start_point"] == tasks["J1"]["head"]
    assert all(t["merged"] for t in tasks.values())
    # The streams were merged at the end, in table order (amd first), with nothing between.
    merges = git(git_repo, "log", "--first-parent", "--format=%s", "integration/PLAN", "-3")
    assert merges.splitlines()[:2] == [
        "Merge stream jetson (stream/PLAN/jetson: J1, J2)",
        "Merge stream amd (stream/PLAN/amd: A1, A2)",
    ]
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
    # The other stream's work is merged all the same; the failed one's is not.
    files = git(git_repo, "ls-tree", "-r", "--name-only", "integration/PLAN").splitlines()
    assert "jetson.txt" in files and "amd.txt" not in files

    # Fixed and run again (no --resume): the plan continues where it stopped.
    _commit_plan(git_repo, plan.read_bytes().decode().replace("@script exit 3\r\n", ""))
    again = cpo("run", str(plan), cwd=git_repo)
    assert again.returncode == 0, again.stdout + again.stderr
    ran = {line.split("task=")[1].split()[0] for line in _progress(again.stdout) if "task=" in line}
    assert ran == {"A1", "A2"}  # the jetson tasks, TASK:COMPLETE, did not run again
    files = git(git_repo, "ls-tree", "-r", "--name-only", "integration/PLAN").splitlines()
    assert {"amd.txt", "amd2.txt", "jetson.txt"} <= set(files)
    statuses = {r.task_id: r.status for r in parse_plan(plan.read_text()).rows}
    assert set(statuses.values()) == {"TASK:COMPLETE"}
    resumed = cpo("run", str(plan), "--resume", cwd=git_repo)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr


def test_stream_option_runs_only_the_streams_named(git_repo: Path) -> None:
    plan = _commit_plan(git_repo, PLAN)
    dry = cpo("run", str(plan), "--dry-run", "--stream", "jetson", cwd=git_repo)
    assert "stream jetson on stream/PLAN/jetson: J1, J2\n" in dry.stdout, dry.stdout
    assert "stream amd" not in dry.stdout
    proc = cpo("run", str(plan), "--stream", "jetson", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    statuses = {r.task_id: r.status for r in parse_plan(plan.read_text()).rows}
    assert statuses["A1"] == statuses["A2"] == "TASK:PENDING"
    assert statuses["J1"] == statuses["J2"] == "TASK:COMPLETE"
    bad = cpo("run", str(plan), "--stream", "jetsn", cwd=git_repo)
    assert bad.returncode == 2
    assert "did you mean 'jetson'" in bad.stderr


DEPENDS_PLAN = """\
## Progress Tracking

| Task | Stream | Status | Depends |
|------|--------|--------|---------|
| A1 | amd | TASK:PENDING | |
| A2 | amd | TASK:PENDING | |
| J1 | jetson | TASK:PENDING | |
| J2 | jetson | TASK:PENDING | A1 |

## Task A1
@script sleep 1
@script write amd.txt one
@script commit amd one
@script marker

## Task A2
@script write amd2.txt two
@script commit amd two
@script marker

## Task J1
@script write jetson.txt one
@script commit jetson one
@script marker

## Task J2
@script require amd.txt
@script require jetson.txt
@script marker
"""


def test_depends_brings_the_other_streams_work_into_the_waiting_stream(git_repo: Path) -> None:
    # J2 needs A1's file: A1's work is merged into the jetson branch before J2 starts.
    plan = _commit_plan(git_repo, DEPENDS_PLAN)
    proc = cpo("run", str(plan), "--max-concurrent", "2", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = git(git_repo, "log", "--format=%s", "stream/PLAN/jetson")
    assert "Merge A1 (stream amd) into stream jetson" in log
    assert "amd two" not in log  # A1's work only, not what its stream did after it


def test_validation_runs_on_the_merged_streams(git_repo: Path) -> None:
    text = "---\r\nvalidation: test -f amd2.txt && test -f jetson.txt\r\n---\r\n" + PLAN
    plan = _commit_plan(git_repo, text)
    proc = cpo("run", str(plan), "--max-concurrent", "2", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wave = json.loads((git_repo / "PLAN.cpo" / "report.json").read_text())["waves"][0]
    assert wave["validation"][0]["source"] == "test -f amd2.txt && test -f jetson.txt"
    assert wave["validation_exit_code"] == 0 and wave["status"] == "completed"
    assert plan.read_text().startswith("---\nvalidation: test -f amd2.txt")


def test_a_failing_validate_flag_fails_the_run(git_repo: Path) -> None:
    plan = _commit_plan(git_repo, PLAN)
    proc = cpo("run", str(plan), "--validate", "echo broken; exit 7", cwd=git_repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads((git_repo / "PLAN.cpo" / "report.json").read_text())
    assert report["waves"][0]["validation_exit_code"] == 7
    assert "broken" in (git_repo / "PLAN.cpo" / "logs" / "wave-1-validation.log").read_text()
    # The tasks did their work: the plan says so; the validation's failure is the run's.
    assert {r.status for r in parse_plan(plan.read_text()).rows} == {"TASK:COMPLETE"}


def test_status_integrate_and_clean_take_the_plan_file(git_repo: Path) -> None:
    plan = _commit_plan(git_repo, PLAN)
    assert cpo("status", str(plan), cwd=git_repo).returncode == 2  # no run yet
    assert cpo("run", str(plan), cwd=git_repo).returncode == 0
    status = cpo("status", str(plan), cwd=git_repo)
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"cpo integrate {plan}" in status.stdout  # the plan file, which every command takes
    merged = cpo("integrate", str(plan), "--into", "main", cwd=git_repo)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert (git_repo / "PLAN.cpo" / "integration-report.md").is_file()
    clean = cpo("clean", str(plan), cwd=git_repo)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    # Each stream's worktree and branch once, though two tasks each ran there.
    assert clean.stdout.count("deleted branch stream/PLAN/amd") == 1
    assert "stream/PLAN" not in git(git_repo, "branch", "--list")


def test_an_interrupted_plan_continues_and_merges_the_streams_done_before(
    git_repo: Path,
) -> None:
    slow = PLAN.replace(
        "@script sleep 1.5\r\n@script write amd.txt", "@script sleep 60\r\n@script write amd.txt"
    )
    plan = _commit_plan(git_repo, slow)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cpo", "run", str(plan), "--max-concurrent", "2"],
        cwd=git_repo,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # the jetson stream is done while A1 still works
        if "task=J2 status=completed" in line:
            break
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    proc.stdout.close()
    statuses = {r.task_id: r.status for r in parse_plan(plan.read_text()).rows}
    assert (statuses["A1"], statuses["J2"]) == ("TASK:PENDING", "TASK:COMPLETE")
    assert git(git_repo, "ls-tree", "-r", "--name-only", "integration/PLAN").count("txt") == 0

    _commit_plan(git_repo, plan.read_bytes().decode().replace("@script sleep 60\r\n", ""))
    again = cpo("run", str(plan), cwd=git_repo)
    assert again.returncode == 0, again.stdout + again.stderr
    # The jetson stream, all TASK:COMPLETE now, is merged from its branch all the same.
    files = git(git_repo, "ls-tree", "-r", "--name-only", "integration/PLAN").splitlines()
    assert {"amd.txt", "amd2.txt", "jetson.txt"} <= set(files)
