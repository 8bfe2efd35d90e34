"""Where a repository is, and what git's own files answer without a process (and the
one file cpo writes there itself: info/exclude, `add_exclude`).

A worktree's HEAD is read from its loose ref file (one git process fewer per merge); any
other layout (packed refs, reftable) answers None and the caller asks git.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from cpo.errors import PreflightError

OID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def git_dir(worktree: Path) -> Path:
    """A worktree's own git folder (its HEAD, index): `.git`, or for a linked worktree the
    folder its `.git` file names. OSError if it cannot be read."""
    dotgit = worktree / ".git"
    if dotgit.is_file():  # a linked worktree: "gitdir: <its folder in the repository>"
        return worktree / dotgit.read_text().removeprefix("gitdir:").strip()
    return dotgit


def head_from_files(worktree: Path) -> str | None:
    """The commit HEAD's branch points at, read from git's ref files: one process fewer
    per merge. None where git keeps the ref elsewhere (packed refs, reftable): ask git."""
    try:
        gitdir = git_dir(worktree)
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


def find_repo(start: Path) -> Path:
    """The top of the git work tree containing `start`."""
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=start if start.is_dir() else start.parent,
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError as exc:
        raise PreflightError("git is not installed", hint="install git and try again") from exc
    if proc.returncode != 0:
        raise PreflightError(
            f"{start} is not inside a git repository",
            hint="run cpo from the repository the feature belongs to (git init first if new)",
        )
    return Path(proc.stdout.strip()).resolve()


def add_exclude(common_dir: Path, pattern: str) -> None:
    """Add a pattern to the repository's info/exclude (shared by every worktree), once."""
    path = common_dir / "info" / "exclude"
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = path.read_text().splitlines() if path.exists() else []
    if pattern not in existing:
        with path.open("a") as fh:
            if existing and not path.read_text().endswith("\n"):
                fh.write("\n")
            fh.write(f"{pattern}\n")
