"""What a `reset --hard` that a kill cut short left in a task's worktree: told apart from work.

A launch moves a worktree that already has an index (checked out warm at the base:
cpo.run.warm, or a retried task's) to the task's start point with `git reset --hard`. Killed
in the middle (cpo with its git), it leaves the old index, HEAD where it was, and some
files already as the start point has them. `git status` shows those as changes, which the
launch would commit as the agent's "uncommitted changes" and keep on a spurious
`<branch>-attempt-N`. When every changed file is exactly as the start point has it
(present with its content and mode, or absent), the reset to that start point loses
nothing: each file is then HEAD's or the start point's, both in history. Anything this
cannot prove (a file cut short mid-write, a symlink, a submodule, a rename in the index:
an agent's work) counts as work and is committed, as before.
"""

from __future__ import annotations

import os
from pathlib import Path

from cpo.errors import GitError
from cpo.git import Git

_CHUNK = 500  # paths per `git hash-object` (a command line has a length limit)
_FILE_MODES = {"100644": False, "100755": True}  # regular files: executable or not


def half_moved_to(git: Git, worktree: Path, start: str) -> bool:
    """Whether every change in `worktree` is a file as `start` has it (see the module)."""
    try:
        changed = git.status_entries(worktree)
        if not changed:
            return True
        if any(code[0] in "RC" or path.endswith("/") for code, path in changed):
            return False  # a rename staged, a nested repository: not a checkout's doing
        at_start = _files(git, worktree, start)
        present = []
        for _, path in changed:
            file, want = worktree / path, at_start.get(path)
            if not os.path.lexists(file):
                if want is not None:
                    return False  # deleted, but the start point has it
                continue
            if want is None or want[0] not in _FILE_MODES:
                return False  # not in the start point, or a symlink or submodule there
            if file.is_symlink() or not file.is_file():
                return False
            if bool(file.stat().st_mode & 0o100) != _FILE_MODES[want[0]]:
                return False
            present.append(path)
        for i in range(0, len(present), _CHUNK):
            chunk = present[i : i + _CHUNK]
            # Through the worktree's filters (clean, eol), as `git add` would store them.
            ids = git.run("hash-object", "--", *chunk, cwd=worktree).split()
            if ids != [at_start[path][1] for path in chunk]:
                return False
    except (GitError, OSError):
        return False  # whatever went wrong, committing it keeps everything
    return True


def _files(git: Git, worktree: Path, commit: str) -> dict[str, tuple[str, str]]:
    """path -> (mode, object id) of every file in `commit`'s tree."""
    out = git.run("ls-tree", "-r", "-z", "--full-tree", commit, cwd=worktree)
    found = {}
    for entry in out.split("\0"):
        if not entry:
            continue
        meta, path = entry.split("\t", 1)
        mode, _, oid = meta.split()
        found[path] = (mode, oid)
    return found
