"""The worker's git: a fresh clone of the launch's branch, and the push of its work.

The coordinator put the branch on the remote at the start commit (cpo.run.remote), so the
worker needs no fetch by commit id (which servers may refuse): it clones that one branch
and checks it is where the launch says. The push is `--force-with-lease` against the
start commit: it lands only if nobody else moved the branch meanwhile (a duplicate
attempt, a stale worker), and then replaces it.
"""

from __future__ import annotations

from pathlib import Path

from cpo.errors import GitError
from cpo.executors.spec import TaskLaunch
from cpo.git import MARKER, Git


def clone_branch(launch: TaskLaunch, workdir: Path) -> Git:
    """`workdir` (absent or empty) made a clone of the launch's branch at its start commit;
    with `launch.sparse`, a cone sparse checkout of those folders (as cpo.run.worktrees)."""
    sparse = () if launch.sparse is None else ("--no-checkout",)
    Git(workdir.parent).run(
        "clone",
        "--quiet",
        "--no-tags",
        "--single-branch",
        *sparse,
        "--branch",
        launch.branch,
        launch.remote,
        str(workdir),
        cwd=workdir.parent,
    )
    git = Git(workdir)
    if launch.sparse is not None:
        # Before the first checkout: `reset --hard` then writes only these paths.
        git.run("sparse-checkout", "set", "--cone", "--", *launch.sparse, cwd=workdir)
        git.check_out(workdir, "HEAD")
    head = git.rev("HEAD")
    if head != launch.start_commit:
        raise GitError(
            f"branch {launch.branch} on {launch.remote} is at {(head or 'nothing')[:12]}, not "
            f"at the launch's start commit {launch.start_commit[:12]}: another attempt "
            "moved it; the coordinator starts a new attempt"
        )
    git.exclude_pattern(f"/{MARKER}")  # the marker is never committed by cpo's own commits
    return git


def push_branch(git: Git, launch: TaskLaunch) -> None:
    """The branch's work onto the remote, if the remote branch is still at the start."""
    ref = f"refs/heads/{launch.branch}"
    git.run(
        "push",
        "--quiet",
        f"--force-with-lease={ref}:{launch.start_commit}",
        launch.remote,
        f"{ref}:{ref}",
    )
