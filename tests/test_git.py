"""The git layer on real repositories: status parsing, merges, conflicts, lock retries."""

from __future__ import annotations

import os
import subprocess
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


def test_a_merge_takes_its_commit_from_the_ref_files_not_another_git_process(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    g = Git(git_repo)
    base = g.rev("HEAD") or ""
    g.create_branch("integration/T", base)
    integ = tmp_path / "integ"
    g.add_worktree(integ, "integration/T")
    for name in ("a", "b"):
        g.add_worktree(tmp_path / name, f"feature/{name}", base)
        (tmp_path / name / f"{name}.txt").write_text(name)
        g.commit_leftovers(tmp_path / name, name)
    git(git_repo, "pack-refs", "--all")  # refs packed: the commit still comes out right
    calls: list[list[str]] = []
    raw = Git._raw

    def counted(
        self: Git, args: list[str], cwd: Path, stdin: str | None = None
    ) -> tuple[int, str, str]:
        calls.append(list(args))
        return raw(self, args, cwd, stdin)

    monkeypatch.setattr(Git, "_raw", counted)
    first = g.merge(integ, "feature/a", "merge a")
    assert [c[0] for c in calls] == ["merge"]  # the merge wrote a loose ref: read it
    assert first.ok and first.commit == git(git_repo, "rev-parse", "integration/T")
    second = g.merge(integ, "feature/b", "merge b")
    assert second.ok and second.commit == git(git_repo, "rev-parse", "integration/T")


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
    assert env["GIT_CONFIG_COUNT"] == "3"
    assert (env["GIT_CONFIG_KEY_0"], env["GIT_CONFIG_VALUE_0"]) == ("a.b", "c")  # the user's
    assert (env["GIT_CONFIG_KEY_1"], env["GIT_CONFIG_VALUE_1"]) == ("gc.auto", "0")
    assert (env["GIT_CONFIG_KEY_2"], env["GIT_CONFIG_VALUE_2"]) == ("maintenance.auto", "false")


def test_commits_under_the_agent_env_start_no_maintenance(git_repo: Path, tmp_path: Path) -> None:
    """A commit or merge runs `git maintenance run --auto` after itself, a process that
    finds nothing to do with gc.auto=0: under cpo's environment it is not started."""
    trace = tmp_path / "trace"
    env = {**agent_git_env(os.environ), "GIT_TRACE": str(trace)}
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "x"], cwd=git_repo, env=env,
                   check=True)  # fmt: skip
    assert "maintenance" not in trace.read_text()


# -- why a merge failed (issue 11): conflicts, hooks, untracked files; cut-short checkouts
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
