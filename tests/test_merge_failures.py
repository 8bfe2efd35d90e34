"""Why a task's merge into the integration branch failed, end to end through `cpo run`: a
hook's refusal is `hook_rejected` with its output, untracked files in the way are named
(issue 11, items 10 and 14)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import git
from tests.runkit import cpo, make_spec, report

AGENT = (
    "echo work > work.txt && git add work.txt && git commit -qm work && "
    "echo '{\"task_completed\": true}' > .claude-task-complete"
)


def _run(repo: Path, agent: str = AGENT) -> tuple[Path, dict[str, object]]:
    root = make_spec(repo, [{"task-001": "work"}])
    proc = cpo("run", str(root), "--backend", "command", "--agent-command", agent, cwd=repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    task: dict[str, object] = report(root)["tasks"]["task-001"]
    assert (task["status"], task["merged"]) == ("failed", False)
    assert f"status=failed error={task['reason']}" in proc.stdout
    return root, task


def _hook(hooks_dir: Path, name: str, body: str) -> None:
    hooks_dir.mkdir(parents=True, exist_ok=True)
    (hooks_dir / name).write_text(f"#!/bin/sh\n{body}\n")
    (hooks_dir / name).chmod(0o755)


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("pre-merge-commit", "echo 'merges are frozen until Friday' >&2; exit 1"),
        # the agent's own commits pass; only merge messages are refused
        (
            "commit-msg",
            "grep -q '^Merge' \"$1\" && { echo 'merges are frozen until Friday'; exit 1; }; exit 0",
        ),
    ],
    ids=["pre-merge-commit", "commit-msg"],
)
def test_a_hook_refusing_the_merge_is_hook_rejected(git_repo: Path, name: str, body: str) -> None:
    _hook(git_repo / ".git" / "hooks", name, body)
    root, task = _run(git_repo)
    assert task["reason"] == "hook_rejected"
    assert "merges are frozen until Friday" in str(task["error"])
    assert "merges are frozen until Friday" in (root / "logs" / "task-001.log").read_text()
    assert task["conflict_files"] == []


def test_core_hooks_path_is_honoured(git_repo: Path, tmp_path: Path) -> None:
    _hook(tmp_path / "team-hooks", "pre-merge-commit", "echo 'from core.hooksPath' >&2; exit 1")
    git(git_repo, "config", "core.hooksPath", str(tmp_path / "team-hooks"))
    _, task = _run(git_repo)
    assert task["reason"] == "hook_rejected"
    assert "from core.hooksPath" in str(task["error"])


def test_untracked_file_in_the_integration_worktree_is_named(git_repo: Path) -> None:
    # The agent drops a file where the merge will want to write its own work.txt.
    drop = (
        f'{sys.executable} -c "import json, os; '
        "p = json.load(open(os.path.join(os.environ['CPO_PARALLEL_DIR'], 'report.json')))"
        "['integration_worktree']; open(os.path.join(p, 'work.txt'), 'w').write('mine')\""
    )
    _, task = _run(git_repo, f"{drop} && {AGENT}")
    assert task["reason"] == "untracked_files"
    assert task["conflict_files"] == ["work.txt"]
    assert "work.txt" in str(task["error"]) and "integration" in str(task["error"])
