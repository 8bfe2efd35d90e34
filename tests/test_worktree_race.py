"""Agents that read git all the time (as Claude Code does) never trip over a worktree
that cpo is creating: every worktree is made before any agent starts (DESIGN 3).

Before that, git's half-written `.git/worktrees/<x>/commondir` made such agents fail
with `fatal: failed to read ... commondir`: this test failed in about half of its
sessions on that code (a race: not every time). The full figure (runs of 30 tasks at
-j 4 and -j 16) is bench/bench_worktree_race.py.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import git
from tests.runkit import cpo, make_spec, report

READERS = "git status -s && git branch && git worktree list && git log -3 --oneline"
AGENT = (
    f"for i in 1 2 3 4 5 6; do {{ {READERS}; }} >/dev/null || exit 1; done && "
    'echo "$CPO_TASK_ID" > "$CPO_TASK_ID.txt" && git add -A && git commit -qm "$CPO_TASK_ID" && '
    ": > .claude-task-complete"
)


def test_git_reading_agents_never_see_a_half_made_worktree(git_repo: Path) -> None:
    tasks = {f"task-{i:03d}": "x" for i in range(1, 17)}
    for run in range(3):
        root = make_spec(git_repo, [tasks], spec_id=f"TS-{run}")
        proc = cpo(
            "run",
            str(root),
            "--backend",
            "command",
            "--agent-command",
            AGENT,
            "-j",
            "4",
            "--workspace-root",
            f"../ws-{run}",
            cwd=git_repo,
        )
        failed = {
            t["id"]: t["error"]
            for t in report(root)["tasks"].values()
            if t["status"] != "completed"
        }
        assert not failed and proc.returncode == 0, f"run {run}: {failed}"


def test_worktrees_of_tasks_that_never_started_are_removed(git_repo: Path) -> None:
    root = make_spec(
        git_repo,
        [{"task-001": "x"}, {"task-002": "y"}],
        deps={"task-002": ["task-001"]},
    )
    proc = cpo("run", str(root), "--backend", "command", "--agent-command", "exit 3", cwd=git_repo)
    assert proc.returncode == 1
    data = report(root)
    assert data["tasks"]["task-002"]["reason"] == "dependency_failed"
    assert not Path(data["tasks"]["task-002"]["worktree"]).exists()
    assert data["tasks"]["task-002"]["branch"] not in git(git_repo, "branch", "--list")
    assert Path(data["tasks"]["task-001"]["worktree"]).is_dir()  # it ran: kept
