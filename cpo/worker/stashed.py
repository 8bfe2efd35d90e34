"""The stash of the worker's clone: what an attempt's agent left in it (cpo.run.stash).

As under the local executor, work the agent put in the stash instead of on its branch fails
the task as `stashed_work` and nothing of it is merged. Here the stash is the clone's own,
and the clone is removed after the attempt: so each such entry is first pushed to the git
remote, as the branch `<attempt branch>-stash-<commit>` (a stash entry is a commit; its
parents, the index and untracked files, go with it), which `cpo run` fetches with the
attempt's branch (cpo.run.remote), so `git stash apply <commit>` brings it back in the
task's worktree there. An entry that cannot be pushed keeps the clone, and the warning
says where. Nothing is lost either way.
"""

from __future__ import annotations

import shlex
import socket
from collections.abc import Callable
from pathlib import Path

from cpo.errors import CpoError
from cpo.executors.spec import TaskLaunch
from cpo.git import Git
from cpo.run.claim import Handover
from cpo.run.stash import StashEntry, read_stash, stash_change, stash_verdict


def stash_branch(branch: str, entry: StashEntry) -> str:
    """The branch on the remote that keeps an entry the agent left (beside its attempt's:
    `cpo clean` keeps it unless forced, as it is merged nowhere)."""
    return f"{branch}-stash-{entry.commit[:12]}"


def stash_checked(
    git: Git,
    launch: TaskLaunch,
    workdir: Path,
    before: tuple[StashEntry, ...],
    work: Handover,
    mask: Callable[[str], str],
) -> tuple[Handover, bool]:
    """`work` judged by what the agent did to the clone's stash since `before`, and whether
    the clone must be kept (an entry left in it could not be pushed). `mask`: for git's
    words, which may hold the remote's URL."""
    branch = launch.branch
    change = stash_change(before, read_stash(git), branch)
    if not change.stashed:
        # A fresh clone's stash is empty: no entry of anyone else's can be taken from it.
        return stash_verdict(git, change, work, workdir, branch), False
    pushed: dict[str, str] = {}
    problems: dict[str, str] = {}
    for entry in change.stashed:
        name = stash_branch(branch, entry)
        try:  # a new branch: never forced over one another worker pushed
            git.run("push", "--quiet", launch.remote, f"{entry.commit}:refs/heads/{name}")
            pushed[entry.commit] = name
        except CpoError as exc:
            problems[entry.commit] = mask(exc.message)
    clone = f"{socket.gethostname()}:{workdir}"

    def left(entry: StashEntry) -> str:
        said = (
            f"the agent left work in the git stash of the worker's clone ({clone}), not on "
            f"{branch}: stash entry {entry.describe()}; "
        )
        name = pushed.get(entry.commit)
        if name is not None:
            return said + (
                f"the clone is removed, so cpo pushed the entry to the git remote as branch "
                f"{name}, which cpo run fetches. Bring it back (in the task's worktree) "
                f"with: git stash apply {entry.commit}"
            )
        return said + (
            f"it could not be pushed ({problems[entry.commit]}), so cpo kept the clone. "
            f"Bring it back there with: git -C {shlex.quote(str(workdir))} stash apply "
            f"{entry.commit}"
        )

    stash = "the git stash of the worker's clone"
    work = stash_verdict(git, change, work, workdir, branch, left=left, stash=stash)
    return work, bool(problems)
