"""Worktrees a kill left half added: found at a run's set-up, removed, added again.

`git worktree add` first writes the new worktree's metadata with `locked` ("initializing")
and a placeholder HEAD (the null id), then sets HEAD in a child process (`git symbolic-ref`
or `update-ref`), and removes `locked` last. When cpo and its git are killed together in
between (a process-group kill, the OOM killer, power loss), the worktree stays registered
with a HEAD that names no commit: every git command in it fails ("Could not parse object
'HEAD'"), and `--resume` could neither check it out nor add it again (its path is taken).

Such a worktree never held work: it was never checked out (cpo adds with `--no-checkout`,
and its HEAD was never set, so no checkout or agent ever ran in it), and the task branch
it was for is a ref of its own, untouched by removing the worktree. So it is removed and
the caller adds it again. Only when everything says so: `locked` still "initializing"
(git's own lock, never a user's reason), HEAD absent or the null id, no index, nothing in
the folder but its `.git` file, and no git process still adding it (cpo killed alone: the
add it started goes on and finishes). Anything else is left as it is, for the launch to
report; except that a worktree killed after its HEAD was set, before git's last step, is
whole and only loses git's own lock ("initializing"): `worktree remove` and `prune` would
refuse it for ever.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from cpo.git import Git
from cpo.indexlock import LIVE_WAIT, UNCHANGED, git_processes_naming
from cpo.logfile import log

_INITIALIZING = "initializing"  # git's `locked` reason while `worktree add` runs
_POLL = 0.05


def mend_killed_adds(git: Git, paths: Iterable[Path]) -> list[Path]:
    """Remove those of `paths` (registered worktrees or not) that a kill left half added;
    the ones removed, for the caller to add again. Costs one directory listing when there
    are none (a worktree being added, or killed, is the only one with that `locked`)."""
    meta_root = git.common_dir() / "worktrees"
    locked = [m for m in _glob(meta_root) if _read(m / "locked") == _INITIALIZING]
    if not locked:
        return []
    wanted = {p.resolve() for p in paths}
    mended = []
    for meta in locked:
        gitfile = _read(meta / "gitdir")
        folder = Path(gitfile).parent.resolve() if gitfile else None
        if folder is None or folder not in wanted:
            continue
        if _head_set(meta):
            # Killed after HEAD was set, before git's last step (the unlock): a whole
            # worktree, which `remove` and `prune` would refuse for ever (locked).
            if _no_git_adding(folder, meta):
                git.run("worktree", "unlock", str(folder))
                log.info("unlocked worktree %s: a kill cut its `git worktree add` short", folder)
            continue
        if not _holds_nothing(meta, folder):
            continue
        if not _no_git_adding(folder, meta):
            log.warning("%s is still being added by a git process: left as it is", folder)
            continue
        if not _holds_nothing(meta, folder):  # that git finished the add meanwhile
            continue
        # What git's own clean-up does when an add fails: the folder (only its .git file)
        # and then the metadata, by prune once the folder is gone (`locked` first: prune
        # keeps locked worktrees).
        (folder / ".git").unlink(missing_ok=True)
        if folder.exists():
            folder.rmdir()
        (meta / "locked").unlink(missing_ok=True)
        log.info("removed worktree %s: a kill cut its `git worktree add` short", folder)
        mended.append(folder)
    if mended:
        git.prune_worktrees()
    return mended


def _head_set(meta: Path) -> bool:
    """HEAD names something other than git's placeholder (the null id)."""
    head = _read(meta / "HEAD")
    return head is not None and head.strip("0") != ""


def _holds_nothing(meta: Path, folder: Path) -> bool:
    """HEAD never set (absent or git's placeholder, the null id), never checked out (no
    index), and nothing in the folder but the `.git` file git writes first."""
    if _read(meta / "HEAD") is None and (meta / "HEAD").exists():
        return False  # unreadable: not ours to judge
    # Absent, empty (cut short while written) or the null id: never set.
    return not _head_set(meta) and not (meta / "index").exists() and _empty(folder)


def _empty(folder: Path) -> bool:
    try:
        return all(child.name == ".git" for child in folder.iterdir())
    except FileNotFoundError:
        return True
    except OSError:
        return False  # unreadable: not ours to judge


def _no_git_adding(folder: Path, meta: Path) -> bool:
    """Wait (at most LIVE_WAIT) until no git process names `folder`; without /proc, until
    `locked` is UNCHANGED seconds old (an add takes milliseconds). False if still busy."""
    deadline = time.monotonic() + LIVE_WAIT
    while time.monotonic() < deadline:
        pids = git_processes_naming(folder)
        if pids is None:
            try:
                age = time.time() - (meta / "locked").stat().st_mtime
            except OSError:
                return True
            if age >= UNCHANGED:
                return True
        elif not pids:
            return True
        time.sleep(_POLL)
    return False


def _glob(meta_root: Path) -> list[Path]:
    try:
        return [m for m in meta_root.iterdir() if (m / "locked").exists()]
    except OSError:  # no worktrees yet
        return []


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
