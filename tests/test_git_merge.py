"""Why a merge failed, told apart: conflicts, hooks that refuse it, untracked files (issue 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cpo.git import Git
from tests.conftest import git


def _setup(repo: Path, tmp_path: Path) -> tuple[Git, Path]:
    """An integration worktree and a task branch `feature/a` adding a.txt."""
    g = Git(repo)
    base = g.rev("HEAD") or ""
    g.create_branch("integration/T", base)
    integ = tmp_path / "integ"
    g.add_worktree(integ, "integration/T")
    wt = tmp_path / "a"
    g.add_worktree(wt, "feature/a", base)
    (wt / "a.txt").write_text("from a\n")
    g.commit_leftovers(wt, "work a")
    return g, integ


def _hook(hooks_dir: Path, name: str, text: str) -> None:
    hooks_dir.mkdir(parents=True, exist_ok=True)
    hook = hooks_dir / name
    hook.write_text(f"#!/bin/sh\necho '{text}' >&2\nexit 1\n")
    hook.chmod(0o755)


@pytest.mark.parametrize("hook", ["pre-merge-commit", "commit-msg"])
def test_a_hook_refusing_the_merge_is_hook_rejected_with_its_output(
    git_repo: Path, tmp_path: Path, hook: str
) -> None:
    g, integ = _setup(git_repo, tmp_path)
    _hook(git_repo / ".git" / "hooks", hook, f"policy: {hook} says no")
    before = g.rev("integration/T")
    result = g.merge(integ, "feature/a", "merge a")
    assert not result.ok
    assert result.failure == "hook_rejected"
    assert f"policy: {hook} says no" in result.message
    assert g.rev("integration/T") == before
    assert git(integ, "status", "--porcelain") == ""  # the merge was aborted


def test_core_hooks_path_is_honoured(git_repo: Path, tmp_path: Path) -> None:
    g, integ = _setup(git_repo, tmp_path)
    _hook(tmp_path / "my-hooks", "pre-merge-commit", "from core.hooksPath")
    git(git_repo, "config", "core.hooksPath", str(tmp_path / "my-hooks"))
    result = g.merge(integ, "feature/a", "merge a")
    assert result.failure == "hook_rejected"
    assert "from core.hooksPath" in result.message


def test_an_untracked_file_in_the_way_is_named(git_repo: Path, tmp_path: Path) -> None:
    g, integ = _setup(git_repo, tmp_path)
    (integ / "a.txt").write_text("left by hand\n")
    result = g.merge(integ, "feature/a", "merge a")
    assert not result.ok
    assert result.failure == "untracked"
    assert result.conflict_files == ("a.txt",)
    assert "a.txt" in result.message
    assert (integ / "a.txt").read_text() == "left by hand\n"


def test_a_real_conflict_is_still_a_conflict(git_repo: Path, tmp_path: Path) -> None:
    g, integ = _setup(git_repo, tmp_path)
    (integ / "a.txt").write_text("other\n")
    g.commit_leftovers(integ, "other a")
    result = g.merge(integ, "feature/a", "merge a")
    assert result.failure == "conflict" and result.conflict_files == ("a.txt",)


def test_a_checkout_cut_short_is_completed(git_repo: Path, tmp_path: Path) -> None:
    # What a kill between `worktree add --no-checkout` and `reset --hard` leaves behind.
    g = Git(git_repo)
    wt = tmp_path / "cut"
    git(git_repo, "worktree", "add", "-q", "--no-checkout", "-b", "feature/cut", str(wt))
    assert "D  README.md" in git(wt, "status", "--porcelain")
    assert g.complete_checkout(wt)
    assert git(wt, "status", "--porcelain") == ""
    assert (wt / "README.md").exists()
    assert not g.complete_checkout(wt)  # a finished checkout is left alone
