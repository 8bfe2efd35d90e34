"""What an attempt hands over: the agent's commits, brought onto the task branch.

README, `cpo run` step 4: what is judged is what the agent committed, the commits reachable from the
worktree's HEAD that are not in its start point, whatever branch (or detached HEAD) they
are on. cpo merges the task branch, so once the agent ends its work is put there: an agent
that detached, ran `git checkout -b other` or deleted its branch has the branch moved (or
made again) to its HEAD, and the worktree put back on it. When that would drop commits (the
branch moved elsewhere too: `diverged`) or bring in history the task did not start from
(HEAD lacks the start point: `off_start_point`), the task fails and every commit stays on a
branch. The completion marker never reaches a merge (see `clear_marker`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cpo.errors import GitError
from cpo.git import MARKER, Git, git_dir

SUBMODULE_NOTE = (
    "changes inside {paths} were left uncommitted in the worktree: they belong to a "
    "submodule's own repository, which cpo does not commit to"
)


@dataclass(frozen=True)
class Handover:
    """The task branch after an attempt, and how it got there."""

    head: str
    commits: int
    files: list[str]
    leftovers: bool  # cpo committed changes the agent left
    reason: str | None = None  # the agent's HEAD could not become the task's work
    error: str | None = None
    kept_branch: str | None = None  # a branch cpo made to keep the agent's HEAD
    warnings: tuple[str, ...] = ()  # for the task log and the report


def clear_marker(git: Git, worktree: Path, start: str, task_id: str) -> str | None:
    """Before an attempt: no completion marker in the worktree nor in the branch's tree,
    so none counts unless this attempt's agent writes it. A marker committed into the start
    point (an earlier agent force-added it) is removed by a cpo commit, and named: the
    warning returned."""
    if git.tracks(start, MARKER):
        git.commit_removal(
            worktree, MARKER, f"cpo: remove {MARKER} committed before {task_id} started"
        )
        return (
            f"the start point {start[:12]} holds a committed {MARKER} (an earlier agent "
            "committed it): cpo removed it before the agent started; only a marker this "
            "agent writes counts"
        )
    (worktree / MARKER).unlink(missing_ok=True)  # a stale one: a crashed attempt's
    return None


STALE_LOCK_NOTE = (
    "the agent was stopped in the middle of a git command and left {lock} behind: "
    "cpo removed it (no process of the agent runs any more)"
)


def drop_stale_index_lock(worktree: Path) -> str | None:
    """Remove the worktree's `index.lock` once its agent is gone; what was done, or None.

    An agent stopped mid-commit (timeout, kill) leaves it, and every later git command in
    the worktree fails on it ("index.lock: File exists"): cpo could commit none of the
    agent's leftovers and the task would fail. Only the agent and cpo use a task's index,
    and the agent's whole process group has ended when this is called (cpo.proc sweeps
    it), so the lock is stale. Not in a worktree without an index: that lock is a killed
    checkout's, whose git may still be running (cpo.indexlock judges it)."""
    try:
        gitdir = git_dir(worktree)
        lock = gitdir / "index.lock"
        if not (gitdir / "index").exists():
            return None
        lock.unlink()
    except OSError:
        return None  # none (the usual case), or not ours to judge
    return STALE_LOCK_NOTE.format(lock=lock)


def hand_over(
    git: Git, worktree: Path, task_id: str, branch: str, start: str, attempt: int, *, ok: bool
) -> Handover:
    """Commit what the agent left, bring the task branch to the agent's HEAD, and say
    what the branch now holds since `start`. `ok`: the agent's verdict was success (only
    then is a committed marker removed, before the merge)."""
    stale = drop_stale_index_lock(worktree)
    leftovers, status = git.settle_worktree(worktree, f"cpo: uncommitted changes left by {task_id}")
    warnings: list[str] = [stale] if stale else []
    if status.paths:
        warnings.append(SUBMODULE_NOTE.format(paths=", ".join(status.paths)))
    # The common case: HEAD on the task branch (the status said so: no rev-parse), and one
    # log answers both whether HEAD holds the start point and what it holds since.
    head = status.head_on(branch)
    since = None if head is None else git.history(start, head)
    known: tuple[str, bool] | None = None
    if head is not None and since is not None and since.has_start is not None:
        known = (head, since.has_start)
    reason, error, kept, moved = _claim(git, worktree, branch, start, attempt, known)
    if moved:
        warnings.append(moved)
    if since is None:
        since = git.history(start, f"refs/heads/{branch}")
    # The branch can hold the marker only if a commit since `start` touched it, or `start`
    # held it: most tasks need no `cat-file` (tracks(start) is remembered per commit).
    maybe = MARKER in since.files or git.tracks(start, MARKER)
    if ok and reason is None and maybe and git.tracks(branch, MARKER):
        git.commit_removal(worktree, MARKER, f"cpo: keep {MARKER} out of {task_id}'s work")
        warnings.append(f"the agent committed {MARKER}: cpo removed it so it is never merged")
        since = git.history(start, f"refs/heads/{branch}")
    head, commits, files = since.head, len(since.commits), since.files
    return Handover(head, commits, files, leftovers, reason, error, kept, tuple(warnings))


def reclaim(
    git: Git, worktree: Path, task_id: str, branch: str, start: str, attempt: int
) -> tuple[str | None, str | None]:
    """Before a worktree is reset for another attempt: an agent cut short along with cpo
    (killed, crashed) may have left its HEAD off the task branch, where the reset would drop
    its commits. They go where `hand_over` puts them. (What was done, a kept branch.)"""
    if not (worktree / ".git").exists():
        return None, None
    try:
        _, on = git.worktree_head(worktree)
    except GitError:
        return None, None  # a broken worktree: the worktree set-up deals with it
    stale = drop_stale_index_lock(worktree)  # its agent ended with the earlier cpo
    if on == branch:
        return stale, None
    git.commit_leftovers(worktree, f"cpo: uncommitted changes left by {task_id}")
    _, error, kept, note = _claim(git, worktree, branch, start, attempt)
    return error or note or stale, kept


def _claim(
    git: Git,
    worktree: Path,
    branch: str,
    start: str,
    attempt: int,
    known: tuple[str, bool] | None = None,
) -> tuple[str | None, str | None, str | None, str | None]:
    """(reason, error, kept branch, note): the task branch made to hold the agent's HEAD,
    or why it was not (reason and error, every commit kept on a branch). `known`: HEAD is
    on `branch`, at this commit, and whether it holds `start` (already asked)."""
    if known is None:
        head, on = git.worktree_head(worktree)
        has_start = git.is_ancestor(start, head)
    else:
        (head, has_start), on = known, branch
    tip = head if on == branch else git.rev(f"refs/heads/{branch}")
    kept_name = f"{branch}-attempt-{attempt}-head"
    where = f"branch {on}" if on else "a detached HEAD"
    if not has_start:
        kept = None if on == branch else _keep(git, head, kept_name)
        if on != branch:
            if tip is None:  # deleted by the agent: back at the start, holding nothing
                git.update_branch(branch, start, "", "cpo: task branch restored")
            git.attach_worktree(worktree, branch, checkout=True)
        return (
            "off_start_point",
            f"the agent's HEAD {head[:12]} (on {where}) does not contain the task's start "
            f"point {start[:12]}: it reset or checked out other history; nothing merged"
            + ("" if on == branch else f"; {_kept_on(kept, on)}"),
            kept,
            None,
        )
    if on == branch:
        return None, None, None, None
    if tip is not None and not git.is_ancestor(tip, head):
        kept = _keep(git, head, kept_name)
        git.attach_worktree(worktree, branch, checkout=True)
        return (
            "diverged",
            f"the agent left commits on {where} ({head[:12]}) and others on {branch} "
            f"({tip[:12]}): nothing merged; {_kept_on(kept, on)}, compare them and retry",
            kept,
            None,
        )
    note = None
    if tip != head:
        git.update_branch(branch, head, tip or "", "cpo: the agent's HEAD")
        note = (
            f"the agent's commits were on {where}, not on its task branch: {branch} "
            f"{'was deleted by the agent and is made again' if tip is None else 'now points'}"
            f" at them ({head[:12]})"
        )
    git.attach_worktree(worktree, branch, checkout=False)
    return None, None, None, note


def _keep(git: Git, head: str, name: str) -> str | None:
    """A branch for `head` unless a ref already holds it; its name."""
    if git.contained_in_a_ref(head):
        return None
    candidate, n = name, 1
    while git.branch_exists(candidate):
        if git.rev(f"refs/heads/{candidate}") == head:
            return candidate
        n += 1
        candidate = f"{name}-{n}"
    git.create_branch(candidate, head)
    return candidate


def _kept_on(kept: str | None, on: str | None) -> str:
    if kept or on:
        return f"its HEAD is kept on branch {kept or on}"
    return "its HEAD is already on another ref"


def saved_branch(git: Git, branch: str, number: int, head: str | None) -> str:
    """Where attempt `number`'s work (`head`) is kept: `<branch>-attempt-N`, unless a
    branch of that name holds other work (the tasks of a plan file's stream share one
    branch, each numbering its own attempts): then the first free `-attempt-N-2`, ..."""
    name = f"{branch}-attempt-{number}"
    extra = 1
    while git.branch_exists(name) and not (head and git.is_ancestor(head, name)):
        extra += 1
        name = f"{branch}-attempt-{number}-{extra}"
    return name
