"""What two git outputs say after an agent ends, read without another process.

`git status --porcelain=v2 --branch -z` names the worktree's HEAD commit and its branch in
the same call that lists what the agent left uncommitted; `git log --format=%x00%H %P
--name-only start..head` lists the commits and files since `start` and, through the
parents it prints, whether `start` is an ancestor of `head`. Together they replace a
`rev-parse` and a `merge-base --is-ancestor` per task (cpo.run.claim). Also read here:
`git status --porcelain -z` (version 1) and `git worktree list --porcelain`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cpo.gitpaths import OID

# Fields before the path in each kind of porcelain v2 entry (`git status` documentation):
# ordinary (1), renamed or copied (2, its source path follows in the next NUL field),
# unmerged (u), untracked (?), ignored (!).
_FIELDS = {"1": 8, "2": 9, "u": 10, "?": 1, "!": 1}


@dataclass(frozen=True)
class WorktreeStatus:
    """A worktree's uncommitted paths (tracked changes and untracked files, relative to its
    root), its HEAD commit (None when unborn) and the branch HEAD is on (None when
    detached, or on something other than a branch)."""

    paths: tuple[str, ...]
    head: str | None
    branch: str | None

    def head_on(self, branch: str) -> str | None:
        """HEAD's commit when HEAD is on `branch`, else None. `branch` is refs/heads/<it>
        shortened, or a full ref name that is not a branch's: exact unless `branch` itself
        starts with "refs/" (then None: callers ask `rev-parse`)."""
        if self.branch != branch or branch.startswith("refs/"):
            return None
        return self.head


def parse_status_v2(out: str) -> WorktreeStatus:
    """The output of `git status --porcelain=v2 --branch -z`."""
    paths: list[str] = []
    head: str | None = None
    branch: str | None = None
    fields = iter(out.split("\0"))
    for entry in fields:
        if entry.startswith("# branch.oid "):
            oid = entry.removeprefix("# branch.oid ")
            head = oid if OID.fullmatch(oid) else None  # "(initial)": unborn
        elif entry.startswith("# branch.head "):
            branch = entry.removeprefix("# branch.head ")
        elif entry[:1] in _FIELDS and entry[1:2] == " ":
            paths.append(entry.split(" ", _FIELDS[entry[0]])[-1])
            if entry[0] == "2":
                next(fields, None)  # the rename's source path
    if branch in ("(detached)", "(null)"):
        # A detached HEAD, or (git 2.39) a HEAD on a ref that is not a branch; also what a
        # branch of that name would print: say nothing rather than guess (callers ask
        # `rev-parse` when the branch is not theirs).
        branch = None
    return WorktreeStatus(tuple(paths), head, branch)


@dataclass(frozen=True)
class History:
    """`head` since `start`: the commits (newest first), the files they touched, and
    whether `start` is an ancestor of `head` (is `head` or a parent of one of them; None
    when `start` is not a full commit id, which the parents could not be compared with)."""

    head: str
    commits: tuple[str, ...]
    files: list[str]
    has_start: bool | None


def parse_history(out: str, start: str, head: str) -> History:
    """The output of `git log --format=%x00%H %P --name-only --no-renames start..head`.

    Every commit listed is reachable from `head` and not from `start`; if `start` is an
    ancestor of `head` (and not `head` itself), the path from `head` down to it passes
    through a listed commit whose parent is `start`. Conversely a listed commit's parent
    is reachable from `head`. So the parents answer `merge-base --is-ancestor start head`.
    """
    commits: list[str] = []
    files: dict[str, None] = {}
    has_start = head == start
    for line in out.splitlines():
        if line.startswith("\0"):
            commit, *parents = line[1:].split()
            commits.append(commit)
            has_start = has_start or start in parents
        elif line:
            files.setdefault(line)
    known = has_start if OID.fullmatch(start) else None
    if not commits:
        return History(start, (), [], known)
    return History(commits[0], tuple(commits), sorted(files), known)


def status_v1_entries(out: str) -> list[tuple[str, str]]:
    """(two-letter status, path) of `git status --porcelain -z` (version 1) output."""
    entries, result = iter(out.split("\0")), []
    for entry in entries:
        if len(entry) >= 4:
            result.append((entry[:2], entry[3:]))
            if entry[0] in "RC":
                next(entries, None)  # the rename's source path follows
    return result


def worktree_list(out: str) -> dict[Path, str | None]:
    """`git worktree list --porcelain`: each worktree's path -> its branch (None: detached)."""
    result: dict[Path, str | None] = {}
    current: Path | None = None
    for line in out.splitlines():
        if line.startswith("worktree "):
            current = Path(line[len("worktree ") :]).resolve()
            result[current] = None
        elif line.startswith("branch ") and current is not None:
            result[current] = line[len("branch ") :].removeprefix("refs/heads/")
    return result
