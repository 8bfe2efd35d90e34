"""Reading git's own files where that answers without a process (one fewer per task).

Only the plain layout is read (a loose ref file); anything else (packed refs, reftable)
answers None and the caller asks git.
"""

from __future__ import annotations

import re
from pathlib import Path

OID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def head_from_files(worktree: Path) -> str | None:
    """The commit HEAD's branch points at, read from git's ref files: one process fewer
    per merge. None where git keeps the ref elsewhere (packed refs, reftable): ask git."""
    try:
        dotgit = worktree / ".git"
        gitdir = dotgit
        if dotgit.is_file():  # a linked worktree: "gitdir: <its folder in the repository>"
            gitdir = worktree / dotgit.read_text().removeprefix("gitdir:").strip()
        head = (gitdir / "HEAD").read_text().strip()
        if not head.startswith("ref: refs/heads/"):
            return None
        common = gitdir
        if (gitdir / "commondir").is_file():
            common = gitdir / (gitdir / "commondir").read_text().strip()
        oid = (common / head.removeprefix("ref: ")).read_text().strip()
    except OSError:
        return None
    return oid if OID.fullmatch(oid) else None
