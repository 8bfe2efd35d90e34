"""The stash every worktree of a repository shares: what an attempt's agent did to it.

Git keeps one stash (`refs/stash` and its reflog) for all the worktrees of a repository,
so the agents of a run, each in its own worktree, and the user share it: an agent's `git
stash` puts its work where cpo does not look (its branch holds none of it, its worktree
looks clean), and its `git stash pop` may take another agent's entry, or the user's, into
its own work. The task protocol tells agents not to use it (cpo.run.protocol); this module
checks, around each attempt's agent, what happened to it anyway:

- an entry made on the task's branch during the attempt (its message: `WIP on <branch>:`
  or `On <branch>:`) holds work its branch lacks: the task fails as `stashed_work`, nothing
  is merged, and the record names the entry and how to bring it back;
- an entry made elsewhere that went away during the attempt was popped or dropped by some
  worktree's git: a warning names it and how to put it back (the commit outlives the
  entry), and the task fails as `stash_taken` when its work changes files the entry
  changes (its agent may have popped it into the task's work).

cpo never drops, pops or clears an entry. The entries are read from the stash's reflog
file, without a git process; only a repository whose refs are in a reftable needs one.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from cpo.git import Git
from cpo.run.claim import Handover

OID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # sha1 or sha256


@dataclass(frozen=True)
class StashEntry:
    commit: str
    message: str  # the reflog's: "WIP on <branch>: <commit> <subject>", "On <branch>: <msg>"

    @property
    def branch(self) -> str | None:
        """The branch `git stash` was run on, from its message (a branch name holds no
        colon); None for a detached HEAD ("(no branch)") or a message of `git stash store`."""
        head, sep, _ = self.message.partition(": ")
        for prefix in ("WIP on ", "On "):
            if sep and head.startswith(prefix):
                name = head.removeprefix(prefix)
                return None if name == "(no branch)" else name
        return None

    def describe(self) -> str:
        return f"{self.commit[:12]} ({self.message})"


def read_stash(git: Git) -> tuple[StashEntry, ...]:
    """The stash's entries, `stash@{0}` first."""
    common = git.common_dir()
    if (common / "reftable").is_dir():  # no reflog file to read: ask git
        out = git.run("log", "-g", "--format=%H%x09%gs", "refs/stash", "--", check=False)
        return tuple(_entries(out.splitlines(), oid_field=0))
    try:
        text = (common / "logs" / "refs" / "stash").read_text(errors="replace")
    except OSError:  # no stash (or none readable): nothing an agent could leave there
        return ()
    return tuple(reversed(_entries(text.splitlines(), oid_field=1)))


def _entries(lines: list[str], oid_field: int) -> list[StashEntry]:
    """Reflog lines (`<old> <new> <who> <when>\\t<message>` in the file; `<oid>\\t<message>`
    from `git log -g`) as entries."""
    entries = []
    for line in lines:
        where, _, message = line.partition("\t")
        fields = where.split()
        if len(fields) > oid_field and OID.fullmatch(fields[oid_field]):
            entries.append(StashEntry(fields[oid_field], message))
    return entries


@dataclass(frozen=True)
class StashChange:
    """What an attempt's window saw happen to the stash."""

    stashed: tuple[StashEntry, ...] = ()  # made on the task's branch meanwhile
    taken: tuple[StashEntry, ...] = ()  # made elsewhere before, and gone


def stash_change(
    before: tuple[StashEntry, ...], after: tuple[StashEntry, ...], branch: str
) -> StashChange:
    """Compare the stash before an attempt's agent and after it. An entry the task's own
    branch made earlier (an earlier attempt's) and that went away is the task's business."""
    if before == after:
        return StashChange()
    was = {e.commit for e in before}
    now = {e.commit for e in after}
    stashed = tuple(e for e in after if e.commit not in was and e.branch == branch)
    taken = tuple(e for e in before if e.commit not in now and e.branch != branch)
    return StashChange(stashed, taken)


def stash_verdict(
    git: Git,
    change: StashChange,
    work: Handover,
    worktree: Path,
    branch: str,
    *,
    left: Callable[[StashEntry], str] | None = None,
    stash: str = "the shared git stash",
) -> Handover:
    """`work`, failed and warned about as the stash's change says (module docstring). An
    earlier failure stays the reason (cpo.run.attempt.exited_of); the warnings are added.
    `left` says where an entry the agent left is kept and how to bring it back, and
    `stash` names the stash, when that is not this repository's (cpo.worker.stashed)."""
    if not change.stashed and not change.taken:
        return work
    warnings = list(work.warnings)
    reason, error = work.reason, work.error
    where = shlex.quote(str(worktree))
    for entry in change.stashed:
        warnings.append(
            left(entry)
            if left is not None
            else f"the agent left work in the git stash (shared by every worktree of the "
            f"repository), not on {branch}: stash entry {entry.describe()}; cpo leaves it "
            f"there. Bring it back with: git -C {where} stash apply {entry.commit}"
        )
    if change.stashed and reason is None:
        reason = "stashed_work"
        error = (
            f"the agent left work in {stash}, not on its branch (stash entry "
            f"{change.stashed[0].commit}): nothing merged; see the task's warnings"
        )
    for entry in change.taken:
        overlap = sorted(set(work.files) & set(_entry_files(git, entry.commit)))
        touched = f"; this task's work changes {', '.join(overlap)}, as it does" if overlap else ""
        warnings.append(
            f"stash entry {entry.describe()} was taken out of the shared git stash while "
            f"this task's agent ran (a git stash pop or drop in some worktree){touched}. "
            f"Its commit is kept: put it back with: git stash store -m "
            f"{shlex.quote(entry.message)} {entry.commit}"
        )
        if overlap and reason is None:
            reason = "stash_taken"
            error = (
                f"a stash entry made on {entry.branch or 'another HEAD'} went away while the "
                f"agent ran, and this task's work changes the same files "
                f"({', '.join(overlap)}): its agent may have popped it into the task's work; "
                "nothing merged; see the task's warnings"
            )
    return replace(work, reason=reason, error=error, warnings=tuple(warnings))


def _entry_files(git: Git, commit: str) -> list[str]:
    """The files a stash entry changes: its worktree's against its base, and the untracked
    files of `git stash -u` (its third parent). Asked only of an entry that went away."""
    files = git.run("diff", "--name-only", "--no-renames", f"{commit}^1", commit, check=False)
    untracked = git.run("ls-tree", "-r", "--name-only", f"{commit}^3", "--", check=False)
    return [*files.splitlines(), *untracked.splitlines()]
