"""The set-up's git questions: asked once inside a snapshot, and asked ahead by `cpo run`
while it imports; an answer asked ahead is only ever taken inside the first snapshot."""

from __future__ import annotations

from pathlib import Path

from cpo import gitmemo
from cpo.git import Git
from cpo.gitmemo import ask_ahead, snapshot


def test_an_answer_asked_ahead_is_taken_once_inside_a_snapshot_only(git_repo: Path) -> None:
    git = Git(git_repo)
    ask_ahead(git_repo, git._env)
    assert gitmemo._ahead.thread is not None
    gitmemo._ahead.thread.join()
    (git_repo / "new.txt").write_text("made after the question was asked\n")
    # outside a snapshot: git is asked now
    assert ("??", "new.txt") in git.status_entries(git_repo)
    with snapshot(git):  # inside: the answer asked ahead (the set-up takes the repo as it was)
        assert ("??", "new.txt") not in git.status_entries(git_repo)
        assert git.status_entries(git_repo) == []  # remembered for the snapshot
    with snapshot(git):  # the answers went with the first snapshot: nothing stale later
        assert ("??", "new.txt") in git.status_entries(git_repo)


def test_a_snapshot_asks_each_question_once(git_repo: Path) -> None:
    git = Git(git_repo)
    with snapshot(git):
        first = git.worktrees()
        (git_repo / "x.txt").write_text("x\n")
        assert git.status_entries(git_repo) == git.status_entries(git_repo)
        assert git.worktrees() is first
    assert ("??", "x.txt") in git.status_entries(git_repo)
