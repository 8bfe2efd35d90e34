"""Preflight refuses what cannot work and leaves nothing behind when it does (issue 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import git
from tests.runkit import cpo, make_spec

pytestmark = pytest.mark.usefixtures("fake_claude")

OK = "@script write a.txt a\n@script commit add a\n@script marker"


@pytest.mark.parametrize(
    ("root", "why"),
    [
        (".", "is the repository itself"),
        (".git/worktrees-of-mine", "is inside git's own folder"),
        ("parallel/TS-0042/wt", "is inside the parallel directory"),
        ("README.md/wt", "cannot be made"),
    ],
)
def test_a_workspace_root_that_cannot_work_is_refused(git_repo: Path, root: str, why: str) -> None:
    spec = make_spec(git_repo, [{"task-001": OK}])
    proc = cpo("run", str(spec), "--workspace-root", root, cwd=git_repo)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert why in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_refused_run_creates_no_workspace_folder(git_repo: Path) -> None:
    spec = make_spec(git_repo, [{"task-001": OK}])
    (git_repo / "dirt.txt").write_text("uncommitted\n")
    proc = cpo("run", str(spec), cwd=git_repo)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert not (git_repo.parent / "workspaces").exists()
    assert not (spec / "logs").exists()
    assert not list(git_repo.parent.glob(".cpo-write-test-*"))


def test_a_detached_head_or_an_unborn_branch_is_refused_with_its_fix(git_repo: Path) -> None:
    """HEAD and its branch come from one git process (Git.worktree_head); when there is no
    commit to build on, cpo still says which of the two is wrong."""
    spec = make_spec(git_repo, [{"task-001": OK}])
    git(git_repo, "checkout", "-q", "--detach")
    proc = cpo("run", str(spec), cwd=git_repo)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "HEAD is detached" in proc.stdout + proc.stderr
    assert "git switch main" in proc.stdout + proc.stderr

    git(git_repo, "checkout", "-q", "--orphan", "fresh")
    git(git_repo, "rm", "-rq", "--cached", ".")
    proc = cpo("run", str(spec), cwd=git_repo)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "branch fresh has no commits yet" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (git_repo.parent / "workspaces").exists()
