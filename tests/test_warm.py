"""Warm checkouts (cpo.run.warm): a waiting task's worktree is checked out at the base
while its dependency's agent runs, so its launch writes only what the merge changed."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import git
from tests.runkit import cpo, make_spec, report

# The first agent waits (up to 10 s) for its dependent's worktree to hold the repository's
# files: before warm checkouts, that worktree stayed empty until the first task merged.
WAITS_FOR_WARM = (
    'if [ "$CPO_TASK_ID" = task-001 ]; then i=0; '
    'while [ ! -f "$CPO_WORKTREE/../task-002/README.md" ]; do '
    "i=$((i+1)); [ $i -gt 200 ] && exit 1; sleep 0.05; done; fi; "
    'echo "$CPO_TASK_ID" > "$CPO_TASK_ID.txt" && git add -A && git commit -qm "$CPO_TASK_ID" && '
    ": > .claude-task-complete"
)


def test_a_dependent_is_checked_out_while_its_dependency_runs(git_repo: Path) -> None:
    root = make_spec(
        git_repo, [{"task-001": "x"}, {"task-002": "y"}], deps={"task-002": ["task-001"]}
    )
    proc = cpo(
        "run", str(root), "--nudges", "0",
        "--backend", "command", "--agent-command", WAITS_FOR_WARM, cwd=git_repo,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = report(root)
    assert [t["status"] for t in data["tasks"].values()] == ["completed", "completed"]
    second = Path(data["tasks"]["task-002"]["worktree"])
    # it started from the merge of task-001, not from the base it was warmed at
    assert (second / "task-001.txt").is_file()
    assert git(second, "status", "--porcelain") == ""
