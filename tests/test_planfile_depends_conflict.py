"""A plan file's `Depends` on another stream's task whose work conflicts with the waiting
stream's: the task fails as a merge conflict between the two streams (`dependency_conflict`,
the files named, what to do next), not as a git error; and once merged by hand, the plan
goes on from there."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cpo.planfile.doc import parse_plan
from cpo.run.nextstep import next_step
from cpo.run.report import Report, TaskRecord
from tests.conftest import git
from tests.runkit import cpo

pytestmark = pytest.mark.usefixtures("fake_claude")

# A1 and J1 change the same line of shared.txt; J2 needs A1's work in the jetson stream.
PLAN = """\
## Progress Tracking

| Task | Stream | Status | Depends |
|------|--------|--------|---------|
| A1 | amd | TASK:PENDING | |
| J1 | jetson | TASK:PENDING | |
| J2 | jetson | TASK:PENDING | A1 |

## Task A1
@script write shared.txt amd
@script commit amd says so
@script marker

## Task J1
@script write shared.txt jetson
@script commit jetson says so
@script marker

## Task J2
@script write j2.txt two
@script commit jetson two
@script marker
"""


def _plan(repo: Path) -> Path:
    (repo / "shared.txt").write_text("base\n")
    plan = repo / "PLAN.md"
    plan.write_text(PLAN)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "plan")
    return plan


def _tasks(repo: Path) -> dict[str, dict[str, object]]:
    report = json.loads((repo / "PLAN.cpo" / "report.json").read_text())
    tasks: dict[str, dict[str, object]] = report["tasks"]
    return tasks


def test_a_dependency_that_conflicts_fails_the_task_as_a_conflict(git_repo: Path) -> None:
    plan = _plan(git_repo)
    # Stopped at the streams' conflict too, so the dependency's conflict stands (with
    # --on-conflict rerun it is settled at the end: the test after this one).
    stop = ("--on-conflict", "stop")
    proc = cpo("run", str(plan), "--max-concurrent", "2", *stop, cwd=git_repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    j2 = _tasks(git_repo)["J2"]
    assert (j2["status"], j2["reason"]) == ("failed", "dependency_conflict")
    assert j2["conflict_files"] == ["shared.txt"]
    error = str(j2["error"])
    assert error.startswith("merge conflict in shared.txt between stream amd (A1")
    worktree = str(j2["worktree"])
    assert f"git -C {worktree} merge " in error  # what to do next, ready to paste
    assert f"cpo run {plan} --retry-failed" in error
    assert "task=J2 status=conflict files=shared.txt action=stop" in proc.stdout
    assert "task=J2 status=failed error=dependency_conflict" in proc.stdout
    assert "=== merge conflict in shared.txt" in (git_repo / "PLAN.cpo/logs/J2.log").read_text()
    # The stream's worktree is left clean, on its branch, for the merge by hand.
    assert git(Path(worktree), "status", "--porcelain") == ""
    assert git(Path(worktree), "symbolic-ref", "HEAD") == "refs/heads/stream/PLAN/jetson"
    statuses = {r.task_id: r.status for r in parse_plan(plan.read_text()).rows}
    assert statuses["J2"] == "TASK:FAILED"

    status = cpo("status", str(plan), cwd=git_repo)
    assert "failed (dependency_conflict)" in status.stdout, status.stdout


def test_settled_by_a_rerun_the_error_no_longer_asks_for_a_merge_by_hand(git_repo: Path) -> None:
    # --on-conflict rerun (the default): J1's stream merge conflicts with A1's at the end,
    # J1 runs again on top of the integration branch, so stream jetson holds A1's work and
    # the merge by hand J2's error gave would merge nothing.
    plan = _plan(git_repo)
    proc = cpo("run", str(plan), "--max-concurrent", "2", cwd=git_repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    tasks = _tasks(git_repo)
    j1, j2 = tasks["J1"], tasks["J2"]
    assert (j1["status"], j1["merged"], len(j1["attempts"])) == ("completed", True, 2)
    a1_head = str(tasks["A1"]["head"])
    assert git(git_repo, "merge-base", "--is-ancestor", a1_head, "stream/PLAN/jetson") == ""
    # J2 has not run: still failed, for the reason it failed, but its error is no
    # longer the stale merge by hand.
    assert (j2["status"], j2["reason"], j2["merged"]) == ("failed", "dependency_conflict", False)
    error = str(j2["error"])
    assert "by hand (" not in error and "git -C" not in error, error
    assert error.startswith("the merge conflict in shared.txt with the work of A1 (stream amd)")
    assert "is settled: stream jetson holds that work now (J1 ran again on top of" in error
    assert error.endswith(f"cpo run {plan} --retry-failed")
    assert j2["conflict_files"] == []
    for shown in (proc.stdout, cpo("status", str(plan), cwd=git_repo).stdout):
        assert "merge it by hand" not in shown, shown
        assert "is settled" in shown
    statuses = {r.task_id: r.status for r in parse_plan(plan.read_text()).rows}
    assert statuses == {"A1": "TASK:COMPLETE", "J1": "TASK:COMPLETE", "J2": "TASK:FAILED"}
    # and what it says to do works: J2 runs on top of A1's work, nothing merged by hand
    done = cpo("run", str(plan), "--retry-failed", cwd=git_repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert {r.status for r in parse_plan(plan.read_text()).rows} == {"TASK:COMPLETE"}
    assert "jetson two" in git(git_repo, "log", "--format=%s", "integration/PLAN")


def test_merged_by_hand_the_waiting_task_runs_on_top_of_the_merge(git_repo: Path) -> None:
    plan = _plan(git_repo)
    # Stopped at the streams' conflict too: J1's stream branch is left as it was (with
    # --on-conflict rerun, J1 would run again on top of A1's work, settling J2's).
    stop = ("--on-conflict", "stop")
    assert cpo("run", str(plan), "--max-concurrent", "2", *stop, cwd=git_repo).returncode == 1
    j2 = _tasks(git_repo)["J2"]
    assert (j2["status"], j2["reason"]) == ("failed", "dependency_conflict")
    assert not j2["merged"]

    error, worktree = str(j2["error"]), Path(str(j2["worktree"]))
    command = error.split("(git -C ", 1)[1].split(",", 1)[0].split()
    assert command[1:2] == ["merge"]
    merge = subprocess.run(["git", "merge", command[2]], cwd=worktree, capture_output=True)
    assert merge.returncode == 1  # the conflict, left for us to fix
    (worktree / "shared.txt").write_text("amd and jetson\n")
    git(worktree, "commit", "-q", "-am", "both")
    done = cpo("run", str(plan), "--retry-failed", cwd=git_repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert {r.status for r in parse_plan(plan.read_text()).rows} == {"TASK:COMPLETE"}
    log = git(git_repo, "log", "--format=%s", "stream/PLAN/jetson")
    assert "both" in log and "jetson two" in log  # J2 ran on top of the merge


def test_run_again_the_waiting_task_runs_it_is_never_counted_as_done(git_repo: Path) -> None:
    # A2 puts shared.txt back: the streams merge at the end, J1's work with them. J2's
    # stream head is then in the integration branch, which must not make J2 (which never
    # ran) count as merged when the plan runs again, as a `conflict` reason would.
    text = PLAN.replace(
        "| J1 | jetson |", "| A2 | amd | TASK:PENDING | |\n| J1 | jetson |"
    ).replace(
        "## Task J1\n",
        "## Task A2\n@script write shared.txt base\\n\n@script commit amd back\n@script marker\n\n"
        "## Task J1\n",
    )
    plan = _plan(git_repo)
    plan.write_text(text)
    git(git_repo, "commit", "-q", "-am", "with A2")
    assert cpo("run", str(plan), cwd=git_repo).returncode == 1
    assert _tasks(git_repo)["J1"]["merged"]
    assert _tasks(git_repo)["J2"]["reason"] == "dependency_conflict"
    again = cpo("run", str(plan), cwd=git_repo)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "task=J2 status=started" in again.stdout  # it ran (A1 is done: its stream merges)
    assert "jetson two" in git(git_repo, "log", "--format=%s", "integration/PLAN")


def test_the_next_step_of_a_dependency_conflict_is_its_hand_merge() -> None:
    """When the run's failure is a dependency's conflict, `next:` gives the merge to make
    (the task's error), not a log to read."""
    said = "merge conflict in shared.txt between stream amd (A1, which J2 depends on) ..."
    j2 = TaskRecord(id="J2", wave=1, status="failed", reason="dependency_conflict", error=said)
    report = Report.model_construct(
        status="failed", tasks={"J2": j2}, waves=[], parallel_dir="/p", integration_worktree=None
    )
    assert next_step(report, "/p/PLAN.md") == said
