"""`cpo clean` never makes work unreachable, and handles each worktree on its own (issue 11)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import git
from tests.runkit import cpo, make_spec, report

pytestmark = pytest.mark.usefixtures("fake_claude")


def _ok(name: str) -> str:
    return f"@script write {name} {name}\n@script commit add {name}\n@script marker"


def _completed_run(repo: Path) -> Path:
    root = make_spec(repo, [{"task-001": _ok("a.txt"), "task-002": _ok("b.txt")}])
    proc = cpo("run", str(root), cwd=repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root


def _worktree(root: Path, task: str) -> Path:
    return Path(report(root)["tasks"][task]["worktree"])


def _reachable(repo: Path, commit: str) -> bool:
    return git(repo, "for-each-ref", "--contains", commit) != ""


def test_a_detached_commit_in_a_worktree_is_never_dropped(git_repo: Path) -> None:
    root = _completed_run(git_repo)
    wt = _worktree(root, "task-001")
    git(wt, "checkout", "-q", "--detach")
    (wt / "late.txt").write_text("work done on a detached HEAD\n")
    git(wt, "add", "late.txt")
    git(wt, "commit", "-q", "-m", "late work")
    late = git(wt, "rev-parse", "HEAD")

    proc = cpo("clean", str(root), cwd=git_repo)
    assert proc.returncode == 1, proc.stdout
    assert f"refused worktree {wt}: its HEAD {late[:12]} is on no branch or tag" in proc.stdout
    assert wt.exists() and git(wt, "rev-parse", "HEAD") == late
    # the other task's worktree was cleaned all the same
    assert not _worktree(root, "task-002").exists()


def test_a_deleted_task_branch_keeps_its_worktree(git_repo: Path) -> None:
    root = _completed_run(git_repo)
    wt = _worktree(root, "task-001")
    branch = report(root)["tasks"]["task-001"]["branch"]
    (wt / "more.txt").write_text("more\n")
    git(wt, "add", "more.txt")
    git(wt, "commit", "-q", "-m", "more work")
    head = git(wt, "rev-parse", "HEAD")
    git(wt, "checkout", "-q", "--detach")
    git(git_repo, "branch", "-D", branch)
    assert not _reachable(git_repo, head)

    proc = cpo("clean", str(root), cwd=git_repo)
    assert proc.returncode == 1
    assert wt.exists()
    assert git(git_repo, "cat-file", "-t", head) == "commit"


def test_one_broken_worktree_does_not_stop_the_others(git_repo: Path) -> None:
    root = _completed_run(git_repo)
    broken = _worktree(root, "task-001")
    (broken / ".git").unlink()
    for args in ((), ("--force",)):
        proc = cpo("clean", str(root), *args, cwd=git_repo)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
        assert f"refused worktree {broken}: git cannot read it" in proc.stdout
    assert broken.exists() and (broken / "a.txt").exists()
    assert not _worktree(root, "task-002").exists()
    assert not Path(report(root)["integration_worktree"]).exists()


def test_validation_debris_does_not_block_the_integration_worktree(git_repo: Path) -> None:
    root = make_spec(
        git_repo,
        [{"task-001": "@script write pkg/__init__.py x=1\n@script commit add pkg\n@script marker"}],
        validation={1: "import pkg; print('ok')"},
    )
    proc = cpo("run", str(root), cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    integ = Path(report(root)["integration_worktree"])
    (integ / "pkg" / "__pycache__").mkdir(exist_ok=True)
    (integ / "pkg" / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"\0")
    proc = cpo("clean", str(root), cwd=git_repo)
    assert proc.returncode == 0, proc.stdout
    assert not integ.exists()
    assert "build debris removed: pkg/__pycache__" in proc.stdout


def test_ignored_files_removed_are_named(git_repo: Path) -> None:
    (git_repo / ".gitignore").write_text("*.env\n")
    git(git_repo, "add", ".gitignore")
    git(git_repo, "commit", "-q", "-m", "ignore env files")
    root = _completed_run(git_repo)
    wt = _worktree(root, "task-001")
    (wt / "local.env").write_text("TOKEN=1\n")
    proc = cpo("clean", str(root), "--dry-run", cwd=git_repo)
    assert f"would remove worktree {wt} (clean; ignored files removed: local.env)" in proc.stdout
    proc = cpo("clean", str(root), cwd=git_repo)
    assert proc.returncode == 0, proc.stdout
    assert f"removed worktree {wt}" in proc.stdout
    assert "ignored files removed: local.env" in proc.stdout


def test_a_users_branch_named_like_an_attempt_branch_is_left_alone(git_repo: Path) -> None:
    root = _completed_run(git_repo)
    branch = report(root)["tasks"]["task-001"]["branch"]
    mine = f"{branch}-attempt-mine"
    git(git_repo, "branch", mine, branch)  # merged, and not cpo's
    proc = cpo("clean", str(root), cwd=git_repo)
    assert proc.returncode == 0, proc.stdout
    assert git(git_repo, "branch", "--list", mine) != ""


def test_a_worktree_made_for_a_task_that_never_started_is_removed(git_repo: Path) -> None:
    # A run killed after making its worktrees (all before the first agent), before a
    # task started: that task's worktree was never checked out and has no index.
    root = _completed_run(git_repo)
    wt = _worktree(root, "task-001")
    index = git(wt, "rev-parse", "--path-format=absolute", "--git-path", "index")
    Path(index).unlink()
    for entry in wt.iterdir():  # what `worktree add --no-checkout` leaves: only .git
        if entry.name != ".git":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    proc = cpo("clean", str(root), cwd=git_repo)
    assert proc.returncode == 0, proc.stdout
    assert not wt.exists()
