"""The git layer on real repositories: status parsing, merges, conflicts, lock retries."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from cpo.errors import GitError, PreflightError
from cpo.git import Git, agent_git_env, find_repo
from tests.conftest import git


def test_dirty_paths_keeps_leading_status_blank_and_excludes(git_repo: Path) -> None:
    (git_repo / "README.md").write_text("changed\n")
    (git_repo / "out").mkdir()
    (git_repo / "out" / "log.txt").write_text("x")
    (git_repo / "new file.txt").write_text("x")
    g = Git(git_repo)
    assert sorted(g.dirty_paths()) == ["README.md", "new file.txt", "out/log.txt"]
    assert sorted(g.dirty_paths(exclude=[(git_repo / "out").resolve()])) == [
        "README.md",
        "new file.txt",
    ]


def test_dirty_paths_handles_renames(git_repo: Path) -> None:
    git(git_repo, "mv", "README.md", "DOCS.md")
    assert Git(git_repo).dirty_paths() == ["DOCS.md"]


def test_worktree_merge_and_conflict(git_repo: Path, tmp_path: Path) -> None:
    g = Git(git_repo)
    base = g.rev("HEAD")
    assert base
    g.create_branch("integration/T", base)
    integ = tmp_path / "integ"
    g.add_worktree(integ, "integration/T")
    for name, text in (("a", "one"), ("b", "two")):
        wt = tmp_path / name
        g.add_worktree(wt, f"feature/{name}", base)
        (wt / "same.txt").write_text(text)
        assert g.commit_leftovers(wt, f"work {name}")
        assert not g.commit_leftovers(wt, "nothing left")
    first = g.merge(integ, "feature/a", "merge a")
    assert first.ok and first.commit == g.rev("integration/T")
    second = g.merge(integ, "feature/b", "merge b")
    assert not second.ok and second.conflict_files == ("same.txt",)
    assert git(integ, "status", "--porcelain") == ""  # aborted cleanly
    assert g.is_ancestor(g.rev("feature/a") or "", "integration/T")
    assert g.worktrees()[integ.resolve()] == "integration/T"


def test_reset_worktree_keeps_marker_out_and_cleans(git_repo: Path, tmp_path: Path) -> None:
    g = Git(git_repo)
    start = g.rev("HEAD") or ""
    wt = tmp_path / "wt"
    g.add_worktree(wt, "feature/x", start)
    (wt / "junk.txt").write_text("x")
    (wt / ".claude-task-complete").write_text("{}")
    g.reset_worktree(wt, start)
    assert not (wt / "junk.txt").exists() and not (wt / ".claude-task-complete").exists()


def test_marker_excluded_in_every_worktree(git_repo: Path, tmp_path: Path) -> None:
    g = Git(git_repo)
    g.exclude_pattern("/.claude-task-complete")
    g.exclude_pattern("/.claude-task-complete")  # idempotent
    wt = tmp_path / "wt"
    g.add_worktree(wt, "feature/y", g.rev("HEAD"))
    (wt / ".claude-task-complete").write_text("done")
    assert g.dirty_paths(wt) == []
    exclude = (git_repo / ".git" / "info" / "exclude").read_text()
    assert exclude.count("/.claude-task-complete") == 1


def test_concurrent_worktree_adds_are_serialised(git_repo: Path, tmp_path: Path) -> None:
    g = Git(git_repo)
    start = g.rev("HEAD")
    errors: list[Exception] = []

    def add(i: int) -> None:
        try:
            g.add_worktree(tmp_path / f"w{i}", f"feature/w{i}", start)
        except Exception as exc:  # collected: the assertion below names them
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(g.worktrees()) == 17


def test_lock_contention_is_retried(git_repo: Path) -> None:
    """A stale index.lock that goes away while we retry does not fail the call."""
    lock = git_repo / ".git" / "index.lock"
    lock.write_text("")
    threading.Timer(0.3, lock.unlink).start()
    (git_repo / "f.txt").write_text("x")
    Git(git_repo).run("add", "f.txt")
    assert "f.txt" in git(git_repo, "diff", "--cached", "--name-only")


def test_git_error_names_the_command(git_repo: Path) -> None:
    with pytest.raises(GitError, match="git rev-parse --verify nope failed"):
        Git(git_repo).run("rev-parse", "--verify", "nope")


def test_find_repo_outside_git(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(PreflightError, match="not inside a git repository"):
        find_repo(tmp_path / "plain")


def test_agent_env_appends_gc_setting() -> None:
    env = agent_git_env(
        {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "a.b", "GIT_CONFIG_VALUE_0": "c"}
    )
    assert env["GIT_CONFIG_COUNT"] == "2"
    assert (env["GIT_CONFIG_KEY_1"], env["GIT_CONFIG_VALUE_1"]) == ("gc.auto", "0")
