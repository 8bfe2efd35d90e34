"""The one-status and one-log answers after an agent (cpo.gitstatus) against the git
commands they replace, on real repositories: `dirty_paths` (porcelain v1), `rev-parse
HEAD --symbolic-full-name HEAD` and `merge-base --is-ancestor`."""

from __future__ import annotations

from pathlib import Path

import pytest

from cpo.git import Git
from tests.conftest import git


def commit(repo: Path, name: str, text: str = "x") -> str:
    (repo / name).parent.mkdir(parents=True, exist_ok=True)
    (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", name)
    return git(repo, "rev-parse", "HEAD")


def same_as_before(g: Git, repo: Path) -> None:
    status = g.worktree_status(repo)
    assert sorted(status.paths) == sorted(g.dirty_paths(repo))
    head, on = g.worktree_head(repo)
    assert (status.head, status.branch) == (head, on)


def test_status_names_paths_head_and_branch_like_the_calls_it_replaces(git_repo: Path) -> None:
    g = Git(git_repo)
    same_as_before(g, git_repo)  # clean, on a branch
    commit(git_repo, "a b.txt")
    git(git_repo, "mv", "a b.txt", "c d.txt")  # a rename: its source path follows
    (git_repo / "README.md").write_text("changed\n")
    (git_repo / "deep" / "er").mkdir(parents=True)
    (git_repo / "deep" / "er" / "new file").write_text("x")
    (git_repo / "tab\there").write_text("x")
    same_as_before(g, git_repo)
    assert "c d.txt" in g.worktree_status(git_repo).paths
    git(git_repo, "stash", "-u", "-q")
    git(git_repo, "checkout", "-q", "--detach")
    status = g.worktree_status(git_repo)
    assert status.branch is None and status.head is not None
    same_as_before(g, git_repo)


def test_status_of_a_branch_named_like_detached_and_an_unborn_head(git_repo: Path) -> None:
    g = Git(git_repo)
    git(git_repo, "checkout", "-q", "-b", "(detached)")
    # Printed as a detached HEAD would be: no branch claimed (callers then ask rev-parse).
    assert g.worktree_status(git_repo).branch is None
    git(git_repo, "checkout", "-q", "--orphan", "fresh")
    status = g.worktree_status(git_repo)
    assert status.head is None and status.branch == "fresh"


def test_head_on_a_branch_only_when_the_name_cannot_be_another_ref(git_repo: Path) -> None:
    g = Git(git_repo)
    head = git(git_repo, "rev-parse", "HEAD")
    git(git_repo, "checkout", "-q", "-b", "feature/T/a")
    assert g.worktree_status(git_repo).head_on("feature/T/a") == head
    assert g.worktree_status(git_repo).head_on("feature/T/b") is None
    git(git_repo, "update-ref", "refs/remotes/x", head)
    git(git_repo, "symbolic-ref", "HEAD", "refs/remotes/x")  # HEAD on a ref not a branch
    status = g.worktree_status(git_repo)
    assert status.head_on("refs/remotes/x") is None and status.branch is None


def test_history_from_an_abbreviated_start_does_not_say(git_repo: Path) -> None:
    g = Git(git_repo)
    start = git(git_repo, "rev-parse", "HEAD")
    head = commit(git_repo, "one.txt")
    assert g.history(start, head).has_start is True
    assert g.history(start[:12], head).has_start is None  # its parents are full ids


@pytest.mark.parametrize(
    "shape", ["ahead", "same", "behind", "beside", "merged-in", "disjoint", "merge-on-top"]
)
def test_history_says_whether_head_holds_start_as_merge_base_does(
    git_repo: Path, shape: str
) -> None:
    g = Git(git_repo)
    base = commit(git_repo, "base.txt")
    start = commit(git_repo, "start.txt")
    if shape == "behind":  # HEAD reset below the start point
        head = base
    elif shape == "same":
        head = start
    elif shape == "beside":  # other history from the same base
        git(git_repo, "checkout", "-q", "--detach", base)
        head = commit(git_repo, "side.txt")
    elif shape == "disjoint":  # an orphan branch: no common history at all
        git(git_repo, "checkout", "-q", "--orphan", "other")
        git(git_repo, "rm", "-rq", "--cached", ".")
        head = commit(git_repo, "orphan.txt")
    elif shape == "merged-in":  # start reached only through a merge's second parent
        git(git_repo, "checkout", "-q", "-b", "side", base)
        commit(git_repo, "side.txt")
        git(git_repo, "merge", "-q", "--no-ff", "--no-edit", start)
        head = commit(git_repo, "after.txt")
    elif shape == "merge-on-top":  # a merge whose first parent is the start point
        git(git_repo, "checkout", "-q", "-b", "side", base)
        side = commit(git_repo, "side.txt")
        git(git_repo, "checkout", "-q", "--detach", start)
        git(git_repo, "merge", "-q", "--no-ff", "--no-edit", side)
        head = git(git_repo, "rev-parse", "HEAD")
    else:
        commit(git_repo, "one.txt")
        head = commit(git_repo, "two.txt")
    since = g.history(start, head)
    assert since.has_start == g.is_ancestor(start, head)
    # What was asked of `git log --format=%x00%H` before: the same commits and files.
    commits = git(git_repo, "rev-list", f"{start}..{head}").split()
    assert list(since.commits) == commits
    assert since.head == (commits[0] if commits else start)
    out = git(git_repo, "log", "--format=", "--name-only", "--no-renames", f"{start}..{head}")
    assert since.files == sorted({line for line in out.splitlines() if line})
