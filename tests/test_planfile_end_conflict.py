"""A plan file's streams that conflict when they merge into the integration branch at
the end: `--on-conflict` (or `run.on_conflict` in the settings) applies as to a task's
merge in a parallel directory, the stream's last completed task standing for the stream:
`rerun` runs it again on top of the integration branch (its earlier work kept on a
branch), `resolve` starts the resolver agent in the merge, `stop` fails it.

Streams `amd` and `jetson` change the same line of shared.txt, with real git and the
scripted claude; `amd` is first in the table, so it merges first and `jetson` conflicts.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from cpo.planfile.doc import parse_plan
from tests.conftest import git
from tests.runkit import cpo, report

pytestmark = pytest.mark.usefixtures("fake_claude")

A1 = "@script write shared.txt amd\\n\n@script commit amd says so\n@script marker"
# Appends: run again on top of the integration branch, it keeps amd's line.
J2 = "@script append shared.txt jetson\\n\n@script commit jetson says so\n@script marker"
J1 = "@script write j1.txt one\\n\n@script commit jetson one\n@script marker"


def _plan(repo: Path, j1: str = J1, j2: str = J2) -> Path:
    """A1 (stream amd); J1 then J2 (stream jetson): A1 and J2 both change shared.txt."""
    (repo / "shared.txt").write_text("base\n")
    plan = repo / "PLAN.md"
    plan.write_text(
        "## Progress Tracking\n\n"
        "| Task | Stream | Status |\n|------|--------|--------|\n"
        "| A1 | amd | TASK:PENDING |\n| J1 | jetson | TASK:PENDING |\n"
        "| J2 | jetson | TASK:PENDING |\n\n"
        f"## Task A1\n{A1}\n\n## Task J1\n{j1}\n\n## Task J2\n{j2}\n"
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "plan")
    return plan


def _statuses(plan: Path) -> dict[str, str]:
    return {r.task_id: r.status for r in parse_plan(plan.read_text()).rows}


def _report(repo: Path) -> dict[str, Any]:
    return report(repo / "PLAN.cpo")


def _integration(data: dict[str, Any]) -> Path:
    return Path(data["integration_worktree"])


def test_rerun_runs_the_streams_last_task_again_on_top_of_the_integration_branch(
    git_repo: Path,
) -> None:
    plan = _plan(git_repo)
    proc = cpo("run", str(plan), "-j", "2", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = _report(git_repo)
    assert data["status"] == "completed"
    j2 = data["tasks"]["J2"]
    assert (j2["status"], j2["merged"], len(j2["attempts"])) == ("completed", True, 2)
    (event,) = j2["conflicts"]
    assert (event["action"], event["outcome"], event["files"]) == ("rerun", "rerun", ["shared.txt"])
    assert event["with_tasks"] == ["A1"]
    assert "task=J2 status=conflict files=shared.txt action=rerun stream=jetson" in proc.stdout
    # Both streams in the integration branch: amd's line kept, J1's work too (the rerun
    # started from the integration head with the stream's earlier work merged in).
    integ = _integration(data)
    assert (integ / "shared.txt").read_text() == "amd\njetson\n"
    assert (integ / "j1.txt").read_text() == "one\n"
    assert all(t["merged"] for t in data["tasks"].values())
    assert git(integ, "status", "--porcelain") == ""
    # The first attempt's work is kept on a branch, not lost.
    saved = j2["attempts"][0]["saved_branch"]
    assert saved == "stream/PLAN/jetson-attempt-1"
    assert git(git_repo, "rev-parse", saved) == j2["attempts"][0]["head"]
    assert git(git_repo, "show", f"{saved}:shared.txt") == "base\njetson"
    # Its agent was told what it must build on.
    log = (git_repo / "PLAN.cpo" / "logs" / "J2.log").read_text()
    assert "=== merge conflict in shared.txt (with A1): --on-conflict rerun ===" in log
    assert _statuses(plan) == {"A1": "TASK:COMPLETE", "J1": "TASK:COMPLETE", "J2": "TASK:COMPLETE"}
    assert "next: review integration/PLAN and merge it: cpo integrate" in proc.stdout


def test_rerun_cannot_settle_a_conflict_in_the_work_the_task_started_from(
    git_repo: Path,
) -> None:
    # J1 (not the stream's last task) conflicts with A1; a rerun of J2 would not help.
    swapped = J2.replace("jetson says so", "jetson one")
    plan = _plan(git_repo, j1=swapped, j2=J1.replace("j1.txt", "j2.txt"))
    proc = cpo("run", str(plan), "-j", "2", cwd=git_repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    data = _report(git_repo)
    j2 = data["tasks"]["J2"]
    assert (j2["status"], j2["reason"], j2["merged"]) == ("failed", "conflict", False)
    assert len(j2["attempts"]) == 1  # not run again
    (event,) = j2["conflicts"]
    assert (event["action"], event["outcome"]) == ("rerun", "stopped")
    assert "the work J2 started from conflicts with integration/PLAN too" in event["error"]
    assert _statuses(plan)["J2"] == "TASK:FAILED"
    assert "next: J2 conflicts with integration/PLAN in shared.txt" in proc.stdout
    # Nothing half merged, the stream's work still on its branch.
    assert git(_integration(data), "status", "--porcelain") == ""
    assert git(git_repo, "rev-parse", "stream/PLAN/jetson") == j2["head"]


@pytest.mark.parametrize("where", ["flag", "config"])
def test_stop_fails_the_streams_last_task_as_before(git_repo: Path, where: str) -> None:
    if where == "config":  # the repository's settings (committed: the tree stays clean)
        (git_repo / ".cpo").mkdir()
        (git_repo / ".cpo" / "config.yaml").write_text("run:\n  on_conflict: stop\n")
    plan = _plan(git_repo)
    flags = ["--on-conflict", "stop"] if where == "flag" else []
    proc = cpo("run", str(plan), "-j", "2", *flags, cwd=git_repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    j2 = _report(git_repo)["tasks"]["J2"]
    assert (j2["status"], j2["reason"], len(j2["attempts"])) == ("failed", "conflict", 1)
    (event,) = j2["conflicts"]
    assert (event["action"], event["outcome"]) == ("stop", "stopped")
    assert "task=J2 status=conflict files=shared.txt action=stop stream=jetson" in proc.stdout
    assert _statuses(plan)["J2"] == "TASK:FAILED"
    assert "next: J2 conflicts with integration/PLAN in shared.txt" in proc.stdout


def test_run_again_after_a_stop_the_task_builds_on_the_integration_branch(
    git_repo: Path,
) -> None:
    plan = _plan(git_repo)
    assert cpo("run", str(plan), "--on-conflict", "stop", cwd=git_repo).returncode == 1
    first = _report(git_repo)["tasks"]["J2"]["head"]
    again = cpo("run", str(plan), cwd=git_repo)
    assert again.returncode == 0, again.stdout + again.stderr
    data = _report(git_repo)
    j2 = data["tasks"]["J2"]
    assert (j2["status"], j2["merged"], len(j2["attempts"])) == ("completed", True, 2)
    assert [c["outcome"] for c in j2["conflicts"]] == ["stopped"]  # no new conflict
    integ = _integration(data)
    assert (integ / "shared.txt").read_text() == "amd\njetson\n"
    assert (integ / "j1.txt").read_text() == "one\n"
    assert git(git_repo, "rev-parse", j2["attempts"][0]["saved_branch"]) == first
    assert set(_statuses(plan).values()) == {"TASK:COMPLETE"}


def test_merged_by_hand_as_the_next_step_says_the_plan_says_complete(git_repo: Path) -> None:
    plan = _plan(git_repo)
    stopped = cpo("run", str(plan), "--on-conflict", "stop", cwd=git_repo)
    assert stopped.returncode == 1
    step = stopped.stdout.split("next: ", 1)[1]
    command = step.split("(git -C ", 1)[1].split(",", 1)[0].split()
    integ, merged = Path(command[0]), command[2]
    assert command[1] == "merge" and integ == _integration(_report(git_repo))
    assert subprocess.run(["git", "merge", merged], cwd=integ, capture_output=True).returncode
    (integ / "shared.txt").write_text("amd\njetson\n")
    git(integ, "commit", "-q", "-am", "both streams")
    resumed = cpo("run", str(plan), "--resume", cwd=git_repo)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    j2 = _report(git_repo)["tasks"]["J2"]
    assert j2["merged"] and j2["conflicts"][-1]["outcome"] == "merged_by_hand"
    assert set(_statuses(plan).values()) == {"TASK:COMPLETE"}


def test_a_branch_named_like_the_kept_attempt_is_not_taken_over(
    git_repo: Path, tmp_path: Path
) -> None:
    # The stream's tasks share its branch, each numbering its own attempts: a branch
    # `-attempt-1` may already keep another task's work.
    prompt = tmp_path / "prompt.txt"
    plan = _plan(git_repo, j2=f"{J2}\n@script save-prompt {prompt}")
    git(git_repo, "branch", "stream/PLAN/jetson-attempt-1", "main")
    assert cpo("run", str(plan), "-j", "2", cwd=git_repo).returncode == 0
    j2 = _report(git_repo)["tasks"]["J2"]
    saved = j2["attempts"][0]["saved_branch"]
    assert saved == "stream/PLAN/jetson-attempt-1-2"
    assert git(git_repo, "rev-parse", saved) == j2["attempts"][0]["head"]
    assert git(git_repo, "rev-parse", "stream/PLAN/jetson-attempt-1") == git(
        git_repo, "rev-parse", "main"
    )
    assert f"kept on the branch {saved} " in prompt.read_text()  # the rerun's, last


# J1 conflicts with A1; J2 after it commits, then its agent crashes: it fails.
FAILS = "@script write j2.txt two\\n\n@script commit jetson two\n@script crash"


@pytest.mark.parametrize("mode", ["rerun", "stop"])
def test_a_failed_task_after_the_last_completed_one(git_repo: Path, mode: str) -> None:
    plan = _plan(git_repo, j1=J2, j2=FAILS)
    proc = cpo("run", str(plan), "-j", "2", "--on-conflict", mode, cwd=git_repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    data = _report(git_repo)
    j1, j2 = data["tasks"]["J1"], data["tasks"]["J2"]
    assert j2["status"] == "failed" and not j2["merged"]
    integ = _integration(data)
    assert not (integ / "j2.txt").exists()  # a failed task's work never reaches it
    if mode == "stop":
        assert (j1["status"], j1["reason"]) == ("failed", "conflict")
        # The hand merge the next step gives is of J1's work, not of the stream's branch
        # (which holds J2's after it).
        assert f" merge {j1['head'][:12]}, fix the files" in proc.stdout
        return
    assert (j1["status"], j1["merged"], len(j1["attempts"])) == ("completed", True, 2)
    assert (integ / "shared.txt").read_text() == "amd\njetson\n"
    # J2's failed work, on the stream's branch when J1 ran again, is kept.
    saved = j1["attempts"][0]["saved_branch"]
    assert git(git_repo, "rev-parse", saved) == j2["head"]
    assert _statuses(plan) == {"A1": "TASK:COMPLETE", "J1": "TASK:COMPLETE", "J2": "TASK:FAILED"}


RESOLVER = (
    "@script resolve write shared.txt amd\\njetson\\n\n@script resolve commit resolve the merge\n"
)


def test_resolve_starts_the_resolver_in_the_streams_merge(git_repo: Path) -> None:
    plan = _plan(git_repo, j2=f"{J2}\n{RESOLVER}")
    proc = cpo("run", str(plan), "-j", "1", "--on-conflict", "resolve", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = _report(git_repo)
    j2 = data["tasks"]["J2"]
    assert (j2["status"], j2["merged"], len(j2["attempts"])) == ("completed", True, 1)
    (event,) = j2["conflicts"]
    assert (event["action"], event["outcome"], event["error"]) == ("resolve", "resolved", None)
    integ = _integration(data)
    assert (integ / "shared.txt").read_text() == "amd\njetson\n"
    assert (integ / "j1.txt").read_text() == "one\n"
    assert event["merge_commit"] == git(integ, "rev-parse", "HEAD") == j2["merge_commit"]
    assert git(integ, "status", "--porcelain") == ""
    assert all(t["merged"] for t in data["tasks"].values())
    assert set(_statuses(plan).values()) == {"TASK:COMPLETE"}


def test_the_resolver_is_told_to_merge_the_commit_not_the_streams_branch(
    git_repo: Path, tmp_path: Path
) -> None:
    # J1 conflicts with A1; J2 commits after it, then fails: the stream's branch holds
    # J2's work, and what the end merge merges is J1's head, which the prompt must name.
    prompt = tmp_path / "resolver-prompt.txt"
    j1 = f"{J2}\n{RESOLVER}@script resolve save-prompt {prompt}\n"
    plan = _plan(git_repo, j1=j1, j2=FAILS)
    proc = cpo("run", str(plan), "-j", "2", "--on-conflict", "resolve", cwd=git_repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    data = _report(git_repo)
    j1_rec, j2_rec = data["tasks"]["J1"], data["tasks"]["J2"]
    assert j1_rec["merged"] and j1_rec["conflicts"][-1]["outcome"] == "resolved"
    assert git(git_repo, "rev-parse", "stream/PLAN/jetson") == j2_rec["head"] != j1_rec["head"]
    said = prompt.read_text()
    assert f"`git merge {j1_rec['head']}` into integration/PLAN" in said
    assert "git merge stream/PLAN/jetson" not in said
    # and it is a command that works as written: in a copy of the integration branch
    # before the resolver's merge, it merges exactly J1's work
    before = git(_integration(data), "rev-parse", "HEAD^1")
    check = tmp_path / "check"
    git(git_repo, "worktree", "add", "-q", "--detach", str(check), before)
    command = said.split("`")[1].split()
    merged = subprocess.run(command, cwd=check, capture_output=True, text=True)
    assert "CONFLICT" in merged.stdout and "shared.txt" in merged.stdout
    assert git(check, "rev-parse", "MERGE_HEAD") == j1_rec["head"]
    assert not (check / "j2.txt").exists()


def test_a_resolver_that_fails_fails_the_streams_last_task(git_repo: Path) -> None:
    plan = _plan(git_repo, j2=f"{J2}\n@script resolve text I could not decide")
    proc = cpo("run", str(plan), "--on-conflict", "resolve", cwd=git_repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    data = _report(git_repo)
    j2 = data["tasks"]["J2"]
    assert (j2["status"], j2["reason"], j2["merged"]) == ("failed", "conflict", False)
    (event,) = j2["conflicts"]
    assert event["outcome"] == "unresolved" and "not committed" in event["error"]
    integ = _integration(data)
    assert git(integ, "status", "--porcelain") == ""
    mid_merge = ["git", "rev-parse", "-q", "--verify", "MERGE_HEAD"]
    assert subprocess.run(mid_merge, cwd=integ, capture_output=True).returncode
    assert (integ / "shared.txt").read_text() == "amd\n"
    assert _statuses(plan)["J2"] == "TASK:FAILED"


def test_no_integration_merges_no_stream_and_runs_no_validation(git_repo: Path) -> None:
    plan = _plan(git_repo)
    proc = cpo("run", str(plan), "--no-integration", "--validate", "true", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = _report(git_repo)
    assert "validation not run" in data["waves"][0]["note"]
    assert not any(t["conflicts"] or t["merged"] for t in data["tasks"].values())
    assert set(_statuses(plan).values()) == {"TASK:COMPLETE"}
