"""The `index.lock` a killed checkout leaves: wait for the git still finishing it, or remove it.

cpo adds every worktree with `--no-checkout` and checks it out with `git reset --hard`
(cpo.git). A kill of cpo in the middle leaves `index.lock` and no `index`, and every later
git command in that worktree fails on the lock: `--resume` could not finish the checkout.
The lock is not stale just because cpo died: a kill -9 hits cpo alone, and the `git reset`
it had started (in its process group, but not one the watchdog stops: cpo.watchdog) goes
on, and renames index.lock to index when done. Removing the lock under it would have two
checkouts write the same worktree and the index of neither survive. So the lock is only
stale once no git process works in the worktree any more: git works with its cwd at the top
of the worktree (it changes there before it takes the lock), which Linux shows in
/proc/<pid>/cwd. Where there is no /proc, a lock unchanged for `UNCHANGED` seconds counts as
stale (git creates it as the checkout starts and writes it only at the end, so its age is
the checkout's).

Such a worktree never held an agent's work (agents start only after the checkout), so
removing its lock loses nothing. A lock in a worktree that HAS an index is never touched
here: that is an agent's, stopped mid-commit (cpo.run.claim.drop_stale_index_lock).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from cpo.errors import GitError
from cpo.gitpaths import git_dir
from cpo.logfile import log

LIVE_WAIT = 300.0  # at most this long for a git still checking out (a large repository)
UNCHANGED = 60.0  # without /proc: a lock this old is a dead checkout's
_POLL = 0.05
_PROC = Path("/proc")


def settle_checkout_lock(worktree: Path) -> None:
    """Before checking out `worktree`: if it has no index but an `index.lock`, wait until
    no git process works in it any more (it may finish the checkout itself), then remove
    the lock if it is still there. GitError if git still works there after `LIVE_WAIT`
    seconds: a checkout that slow, or hung, is not ours to break."""
    try:
        gitdir = git_dir(worktree)
    except OSError:
        return  # not a worktree we can read: git will say what is wrong with it
    lock = gitdir / "index.lock"
    if (gitdir / "index").exists() or not lock.exists():
        return  # the usual case: one or two stats
    deadline = time.monotonic() + LIVE_WAIT
    told = False
    while True:
        holders = _holders(worktree, lock)
        if not holders:
            try:
                lock.unlink()
            except FileNotFoundError:
                return  # the git that held it finished (renamed it to index) meanwhile
            log.info("removed %s, left by a checkout that a kill cut short", lock)
            return
        if not lock.exists():
            return  # finished: the checkout is complete
        if time.monotonic() > deadline:
            raise GitError(
                f"{lock} is held by {holders}, still checking out {worktree} after "
                f"{LIVE_WAIT:.0f} s: let it finish (or stop it), then run again with --resume"
            )
        if not told:
            log.info("waiting for %s to finish the checkout of %s (%s)", holders, worktree, lock)
            told = True
        time.sleep(_POLL)


def _holders(worktree: Path, lock: Path) -> str:
    """Who may still hold `lock` ("" if nobody can): the git processes working in
    `worktree`, or, without /proc, a lock too young to tell."""
    pids = git_processes_in(worktree)
    if pids is not None:
        return ", ".join(f"git process {pid}" for pid in pids)
    try:
        age = time.time() - lock.stat().st_mtime
    except OSError:
        return ""  # gone: nothing to wait for
    return "" if age >= UNCHANGED else f"a git process started {age:.0f} s ago"


def git_processes_in(worktree: Path) -> list[int] | None:
    """Live git processes (git, git-lfs, ...) whose cwd is `worktree` or inside it; None
    where /proc cannot tell. Only git: a shell the user left in the folder holds no lock."""
    if not (_PROC / "self" / "cwd").exists():
        return None
    top = str(worktree.resolve())
    found = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:  # a zombie has no cwd; another user's process cannot be read: neither works here
            cwd = os.readlink(entry / "cwd")
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if name.startswith("git") and (cwd == top or cwd.startswith(top + os.sep)):
            found.append(int(entry.name))
    return found
