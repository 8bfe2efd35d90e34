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
removing its lock loses nothing.

A lock in a worktree that HAS an index (`settle_index_lock`) is judged only at a launch,
before cpo's first git command there: it is a git command's that a kill cut short (the
launch's own `reset --hard <start>` of a warm or retried worktree, or an earlier agent's
`git commit`), or of one still finishing. The task's agent is not running then (this run
starts it after the launch), but the killed run's may still be, until its watchdog stops
it: the lock is kept while a git process, or any process an earlier run started
(cpo.watchdog's tag), still works in the worktree. Without /proc, the lock's age again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from cpo.errors import GitError
from cpo.gitpaths import git_dir
from cpo.logfile import log
from cpo.watchdog import RUN_ID_VAR

LIVE_WAIT = 300.0  # at most this long for a git still checking out (a large repository)
UNCHANGED = 60.0  # without /proc: a lock this old is a dead checkout's
_POLL = 0.05
_PROC = Path("/proc")


def settle_checkout_lock(worktree: Path) -> None:
    """Before checking out `worktree`: if it has no index but an `index.lock`, wait until
    no git process works in it any more (it may finish the checkout itself), then remove
    the lock if it is still there. GitError if git still works there after `LIVE_WAIT`
    seconds: a checkout that slow, or hung, is not ours to break."""
    _settle(worktree, with_index=False)


def settle_index_lock(worktree: Path) -> bool:
    """At a task's launch, before cpo's first git command in `worktree`: if it HAS an index
    and an `index.lock`, wait until no git process, nor a process of an earlier run (its
    agent), works in it any more, then remove the lock if it is still there. True if it
    removed one: a git command was cut short there, and the files may be half moved by a
    `reset --hard`. Without this every git command of the launch fails on the lock (`git
    add -A` after seconds of retries) and the task with it. GitError as above.

    Only at a launch: then this run's agent for the task is not running (it starts after
    the launch), and nothing else of this run works in the task's worktree."""
    return _settle(worktree, with_index=True)


def _settle(worktree: Path, *, with_index: bool) -> bool:
    try:
        gitdir = git_dir(worktree)
    except OSError:
        return False  # not a worktree we can read: git will say what is wrong with it
    lock = gitdir / "index.lock"
    if (gitdir / "index").exists() != with_index or not lock.exists():
        return False  # the usual case: one or two stats
    # (what was cut short, what a git still running there does, what it may finish)
    what, doing, finish = (
        ("git command", "working in", "its git command in")
        if with_index
        else ("checkout", "checking out", "the checkout of")
    )
    deadline = time.monotonic() + LIVE_WAIT
    told = False
    while True:
        holders = _holders(worktree, lock)
        if not holders:
            try:
                lock.unlink()
            except FileNotFoundError:
                return False  # the git that held it finished (renamed it to index) meanwhile
            log.info("removed %s, left by a %s that a kill cut short", lock, what)
            return True
        if not lock.exists():
            return False  # finished: the checkout is complete
        if time.monotonic() > deadline:
            raise GitError(
                f"{lock} is held by {holders}, still {doing} {worktree} after "
                f"{LIVE_WAIT:.0f} s: let it finish (or stop it), then run again with --resume"
            )
        if not told:
            log.info("waiting for %s to finish %s %s (%s)", holders, finish, worktree, lock)
            told = True
        time.sleep(_POLL)


def _holders(worktree: Path, lock: Path) -> str:
    """Who may still hold `lock` ("" if nobody can): the git processes working in
    `worktree` and what an earlier cpo run started there, or, without /proc, a lock too
    young to tell."""
    pids = _processes_in(worktree, lambda entry, name: name.startswith("git") or _tagged(entry))
    if pids is not None:
        return ", ".join(f"process {pid}" for pid in pids)
    try:
        age = time.time() - lock.stat().st_mtime
    except OSError:
        return ""  # gone: nothing to wait for
    return "" if age >= UNCHANGED else f"a git process started {age:.0f} s ago"


def git_processes_naming(folder: Path) -> list[int] | None:
    """Live git processes with `folder` as an argument or an environment value: a `git
    worktree add` of it runs in the repository, not in it, and its `symbolic-ref` child
    gets it as GIT_WORK_TREE. None where /proc cannot tell."""
    if not (_PROC / "self" / "cwd").exists():
        return None
    names = {str(folder).encode(), str(folder.resolve()).encode()}
    found = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if not (entry / "comm").read_text().startswith("git"):
                continue
            args = b"\0" + (entry / "cmdline").read_bytes()
            env = b"\0" + (entry / "environ").read_bytes()
        except OSError:
            continue
        if any(b"\0" + n + b"\0" in args or b"=" + n + b"\0" in env for n in names):
            found.append(int(entry.name))
    return found


def _processes_in(worktree: Path, keep: Callable[[Path, str], bool]) -> list[int] | None:
    """Live processes whose cwd is `worktree` or inside it and that `keep` (given the /proc
    entry and the process's name) keeps; None where /proc cannot tell."""
    if not (_PROC / "self" / "cwd").exists():
        return None
    top = str(worktree.resolve())
    found = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:  # a zombie has no cwd; another user's process cannot be read: neither works here
            cwd = os.readlink(entry / "cwd")
            if not (cwd == top or cwd.startswith(top + os.sep)):
                continue
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if keep(entry, name):
            found.append(int(entry.name))
    return found


def _tagged(entry: Path) -> bool:
    """Whether a process carries a cpo run's tag (cpo.watchdog): an agent, a setup command."""
    try:
        return f"\0{RUN_ID_VAR}=".encode() in b"\0" + (entry / "environ").read_bytes()
    except OSError:
        return False
