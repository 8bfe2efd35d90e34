"""A run killed in the middle of a worktree's checkout, then `--resume`: it completes.

cpo checks each worktree out with `git reset --hard`. Here that checkout is held in the
middle by a smudge filter that waits for a gate file (given to the first run only, through
GIT_CONFIG_* in its environment), so the kill lands while git holds the worktree's
`index.lock` and the worktree has no index yet: exactly what a kill at the wrong moment
leaves. Real cpo, real git, real kills.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cpo import indexlock
from cpo.errors import GitError
from cpo.git import Git, git_dir
from cpo.indexlock import settle_checkout_lock
from cpo.run.claim import drop_stale_index_lock
from tests.conftest import git
from tests.runkit import make_spec
from tests.test_kill_steps import ARGS, problems_after_resume, processes_in, wait_until

TASKS = ["task-001", "task-002"]


def killed_mid_checkout(repo: Path, gate: Path) -> tuple[Path, subprocess.Popen[bytes]]:
    """A run whose checkouts wait at `gate` (every file goes through the filter), once
    one of them holds its index.lock; the run still going, for the caller to kill."""
    (repo / ".gitattributes").write_text("* filter=gate\n")
    root = make_spec(repo, [{"task-001": "one"}, {"task-002": "two"}])
    smudge = f"while [ ! -e '{gate}' ]; do sleep 0.02; done; cat"
    filter_env = {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "filter.gate.smudge",
        "GIT_CONFIG_VALUE_0": smudge,
    }
    run = subprocess.Popen(
        [sys.executable, "-m", "cpo", "run", str(root), *ARGS],
        cwd=repo,
        env={**os.environ, **filter_env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until(lambda: bool(checkout_locks(repo)))
    return root, run


def checkout_locks(repo: Path) -> list[Path]:
    """The index.lock files of worktrees that have no index yet (a checkout under way)."""
    return [
        lock
        for lock in (repo / ".git" / "worktrees").glob("*/index.lock")
        if not (lock.parent / "index").exists()
    ]


def checkouts_running(repo: Path) -> list[int]:
    """The processes working in the repository's worktrees: their checkouts' git, filters."""
    pids = []
    for meta in (repo / ".git" / "worktrees").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a `worktree add` still writing it
            pids += processes_in(Path((meta / "gitdir").read_text().strip()).parent)
    return pids


def resume(repo: Path, root: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cpo", "run", str(root), "--resume", *ARGS],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_checkout_killed_with_its_git_is_completed_by_resume(
    git_repo: Path, tmp_path: Path
) -> None:
    """cpo and its checkouts' git both killed (SIGKILL to the whole group, the OOM killer,
    a reboot): the lock is stale, nothing will ever remove it but cpo."""
    gate = tmp_path / "gate"
    root, run = killed_mid_checkout(git_repo, gate)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    # The `worktree add`s cpo had started (cwd: the repository) end on their own; then the
    # checkouts waiting at the gate (cwd: their worktree) are killed like cpo was.
    wait_until(lambda: not processes_in(git_repo))
    for pid in checkouts_running(git_repo):
        with contextlib.suppress(ProcessLookupError):  # a filter's `sleep` may just end
            os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not processes_in(tmp_path))
    assert checkout_locks(git_repo), "no checkout was cut short: nothing to test"

    resumed = resume(git_repo, root)
    out, _ = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, out
    assert problems_after_resume(git_repo, root, TASKS) == []
    assert not list((git_repo / ".git" / "worktrees").glob("*/index.lock"))


def test_resume_waits_for_the_git_still_checking_out(git_repo: Path, tmp_path: Path) -> None:
    """cpo alone killed (kill -9): the `git reset` it started goes on and will finish the
    checkout. The resumed run waits for it rather than remove the lock under it."""
    gate = tmp_path / "gate"
    root, run = killed_mid_checkout(git_repo, gate)
    os.kill(run.pid, signal.SIGKILL)  # cpo only: its git waits at the gate
    run.wait()
    held = checkout_locks(git_repo)
    assert held and checkouts_running(git_repo), "no git still checking out: nothing to test"

    resumed = resume(git_repo, root)
    try:
        log = root / "logs" / "cpo.log"
        wait_until(lambda: log.exists() and "to finish the checkout of" in log.read_text())
        assert all(lock.exists() for lock in held), "cpo removed a lock a live git holds"
    finally:
        gate.touch()  # the killed run's git finishes the checkout
    out, _ = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, out
    assert problems_after_resume(git_repo, root, TASKS) == []
    wait_until(lambda: not checkouts_running(git_repo))


def unchecked_worktree(repo: Path) -> tuple[Path, Path]:
    """A worktree added with `--no-checkout` (no index, as cpo makes them) and its
    index.lock path (made by the caller)."""
    path = repo.parent / "wt"
    git(repo, "worktree", "add", "-q", "--no-checkout", "-b", "topic", str(path))
    return path, git_dir(path) / "index.lock"


def test_a_lock_in_a_worktree_with_an_index_is_never_touched(git_repo: Path) -> None:
    """That is an agent's, stopped mid-commit: cpo.run.claim judges it, not a checkout."""
    path, lock = unchecked_worktree(git_repo)
    git(path, "reset", "-q", "--hard")
    lock.touch()
    settle_checkout_lock(path)
    assert lock.exists()


def test_a_process_other_than_git_in_the_worktree_holds_no_lock(git_repo: Path) -> None:
    """A shell the user left in the folder does not hold the resume up."""
    path, lock = unchecked_worktree(git_repo)
    lock.touch()
    shell = subprocess.Popen(["sleep", "60"], cwd=path)
    try:
        settle_checkout_lock(path)
    finally:
        shell.kill()
        shell.wait()
    assert not lock.exists()
    assert Git(git_repo).complete_checkout(path)
    assert (path / "README.md").exists()


def test_without_proc_the_age_of_the_lock_tells(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where no /proc shows who works in the worktree: a lock younger than UNCHANGED may be
    a live checkout's (left, GitError once waiting ran out); an older one is removed."""
    path, lock = unchecked_worktree(git_repo)
    lock.touch()
    monkeypatch.setattr(indexlock, "_PROC", Path("/nonexistent-proc"))
    monkeypatch.setattr(indexlock, "LIVE_WAIT", 0.0)
    with pytest.raises(GitError, match="still checking out"):
        settle_checkout_lock(path)
    assert lock.exists()
    old = time.time() - indexlock.UNCHANGED - 1
    os.utime(lock, (old, old))
    settle_checkout_lock(path)
    assert not lock.exists()


def test_the_agents_stale_lock_rule_leaves_a_checkouts_lock_alone(git_repo: Path) -> None:
    """cpo.run.claim removes an agent's lock unasked; a worktree without an index had no
    agent, and its lock may be a checkout's still running: settle_checkout_lock's to judge."""
    path, lock = unchecked_worktree(git_repo)
    lock.touch()
    assert drop_stale_index_lock(path) is None
    assert lock.exists()
