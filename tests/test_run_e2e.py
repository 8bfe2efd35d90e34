"""`cpo run` end to end: real repositories, real worktrees, the scripted claude on PATH."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import git
from tests.runkit import cpo, make_spec, repo_state, report

pytestmark = pytest.mark.usefixtures("fake_claude")


def test_two_waves_wave2_sees_wave1_work(git_repo: Path) -> None:
    root = make_spec(
        git_repo,
        [
            {
                "task-001": "@script write src/a.txt alpha\n@script commit add a\n@script marker",
                "task-002": "@script write src/b.txt beta\n@script commit add b\n@script marker",
            },
            {
                "task-003": "@script require src/a.txt\n@script require src/b.txt\n"
                "@script write src/c.txt gamma\n@script commit add c\n@script marker"
            },
        ],
        deps={"task-003": ["task-001", "task-002"]},
        validation={1: "test -f src/a.txt && test -f src/b.txt", 2: "test -f src/c.txt"},
    )
    before = repo_state(git_repo)
    proc = cpo("run", str(root), cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert repo_state(git_repo) == before
    data = report(root)
    assert data["status"] == "completed"
    assert [t["status"] for t in data["tasks"].values()] == ["completed"] * 3
    assert all(t["merged"] for t in data["tasks"].values())
    integ = "integration/TS-0042"
    files = git(git_repo, "ls-tree", "-r", "--name-only", integ).splitlines()
    assert {"src/a.txt", "src/b.txt", "src/c.txt"} <= set(files)
    assert ".claude-task-complete" not in files
    assert data["tasks"]["task-001"]["commits"] == 1
    assert data["tasks"]["task-001"]["session_id"]
    assert data["waves"][0]["validation_exit_code"] == 0
    lines = [line for line in proc.stdout.splitlines() if line.startswith("[PROGRESS]")]
    assert "[PROGRESS] wave=1 task=task-001 status=started" in lines
    assert "[PROGRESS] wave=1 task=task-001 status=completed commits=1" in lines
    assert "[PROGRESS] wave=1 status=completed tasks=2/2" in lines
    assert lines[-1] == "[PROGRESS] execution status=completed"


def test_wave_tasks_all_branch_from_the_wave_start(git_repo: Path) -> None:
    """Merges made while a wave runs are not in its later-started tasks' start points."""
    wave1 = {
        f"task-{i:03d}": f"@script write f{i}.txt {i}\n@script commit add\n@script marker"
        for i in range(6)
    }
    root = make_spec(git_repo, [wave1])
    proc = cpo("run", str(root), "--max-concurrent", "1", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    starts = {t["attempts"][0]["start_point"] for t in report(root)["tasks"].values()}
    assert starts == {git(git_repo, "rev-parse", "main")}
