"""Throwaway detached worktrees for `"worktree": true` tasks, through `cpo.git.Git`.

Each task gets `git worktree add --detach` of its directory's repository at HEAD, in a
new temporary folder; afterwards the worktree is removed only when the agent left
nothing in it (no change, no commit), so an agent's work is never thrown away.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from cpo.adhoc.result import safe_name
from cpo.errors import GitError
from cpo.git import Git, find_repo


@dataclass(frozen=True)
class Throwaway:
    """One task's worktree: where it is, the commit it started at, and the task's folder."""

    git: Git
    path: Path
    head: str
    taskdir: Path  # the same place inside the worktree as the task's workdir in the repo

    def finish(self) -> str | None:
        """Remove the worktree if the agent left nothing in it; else its path (kept)."""
        try:
            if self.git.dirty_paths(cwd=self.path) or self.git.rev("HEAD", self.path) != self.head:
                return str(self.path)
            self.git.remove_worktree(self.path, force=True)
        except GitError:
            return str(self.path)
        with contextlib.suppress(OSError):
            self.path.parent.rmdir()
        return None


class Worktrees:
    """Makes throwaway worktrees; one `Git` (so one metadata lock) per repository."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gits: dict[Path, Git] = {}

    def _git(self, workdir: Path) -> Git:
        root = find_repo(workdir)
        with self._lock:
            if root not in self._gits:
                self._gits[root] = Git(root)
            return self._gits[root]

    def add(self, workdir: Path, task_id: str) -> Throwaway:
        git = self._git(workdir)
        head = git.rev("HEAD")
        if head is None:
            raise GitError(
                f"{git.root} has no commits yet: a worktree task needs one",
                hint="make a first commit, or drop `worktree: true`",
            )
        holder = Path(tempfile.mkdtemp(prefix=f"cpo-parallel-{safe_name(task_id)}-"))
        path = holder / "worktree"
        git.add_detached_worktree(path, head)
        return Throwaway(git, path, head, path / workdir.resolve().relative_to(git.root))
