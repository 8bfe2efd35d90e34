"""The task worktrees of a run: all made before any agent starts, the unused removed at the end.

git writes a new worktree's metadata (`.git/worktrees/<name>/commondir`, `locked`, ...) in
several steps, and a git command in another worktree that reads it half-written fails
(`fatal: failed to read .git/worktrees/<name>/commondir`). Agents run such commands all
the time (`git status`, `git branch`, `git worktree list`), outside cpo's lock. So every
worktree a run needs is added here, while no agent runs: metadata only (`--no-checkout`),
each new task branch at the base. A launch then only moves its own branch and checks it
out (`Git.check_out`), which creates nothing in `.git/worktrees` (DESIGN 3). On a first
run the adds go on a thread of their own, and the first tasks check out meanwhile (a
checkout reads no other worktree's metadata); their agents still wait for the last add.

Worktrees of tasks that never launched (a dependency failed, the run was stopped) are
removed with their branch at the end of the run: nothing was ever checked out in them.

Checkouts are CPU- and disk-bound; the scheduler prepares twice as many tasks as there are
agent slots, so in a big repository unbounded checkouts would all crawl together and the
first agent would wait for the slowest. At most `CHECKOUTS` run at once (about the core
count), in the order they were asked for (launch order): the first task's is never slowed
by later ones. The set-up's adds hold one of those turns while they run (every first agent
waits for them), and hand it to the integration worktree's checkout. A task with `sparse`
folders (cpo.plan.scope.sparse_folders) gets a cone sparse checkout of them; the
integration worktree is always whole.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cpo.errors import GitError
from cpo.git import Git
from cpo.logfile import log
from cpo.run.killedadd import mend_killed_adds
from cpo.run.slots import Slots
from cpo.run.warm import Warmer


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


CHECKOUTS = max(1, _cores())
# The adds' turn on the checkout gate, and the integration's after them, come before any
# launch's (rank 0).
_ADDS_RANK = -1


def _gate() -> Slots:
    # Slots hands turns out in ticket order; nothing cancels a checkout (it is short, and
    # a task stopped after it simply does not start its agent).
    return Slots(CHECKOUTS, threading.Event())


@dataclass
class RunWorktrees:
    """The worktrees this run's set-up made with a new branch, not launched yet."""

    git: Git
    # path -> (branch, the commit it was made at)
    fresh: dict[Path, tuple[str, str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Folders every sparse checkout holds besides the task's own: the parallel directory
    # (context, contracts: what agents are told to read).
    sparse_always: tuple[str, ...] = ()
    _checkouts: Slots = field(default_factory=_gate)
    _integration: threading.Thread | None = None
    _integration_error: GitError | None = None
    # The set-up's adds, when they run in the background (`add_in_background`).
    _adds: threading.Thread | None = None
    _adds_ticket: tuple[int, int] = (_ADDS_RANK, 0)
    _pending: dict[Path, None] = field(default_factory=dict)  # not reached by the adds yet
    _added: threading.Condition = field(default_factory=threading.Condition)
    _stop_adding: threading.Event = field(default_factory=threading.Event)
    _warmer: Warmer | None = None

    def warm(self, order: Sequence[Path], base: str, ahead: int) -> None:
        """Check the worktrees of `order` out at `base` ahead of their launches, at most
        `ahead` of them waiting at a time (cpo.run.warm)."""
        self._warmer = Warmer(self.git, self._checkouts, ahead)
        # Not before every add is done: until then the adds (which every first agent
        # waits for) and the first tasks' checkouts want the cores.
        self._warmer.start(order, base, self.wait_added, self._still_fresh)

    def _wait_added(self, path: Path) -> None:
        with self._added:
            self._added.wait_for(lambda: path not in self._pending)

    def _still_fresh(self, path: Path) -> bool:
        with self._lock:
            return path in self.fresh

    def add_in_background(self, new: Sequence[tuple[Path, str]], base: str) -> None:
        """Add these worktrees, each with a new branch at `base`, on a thread of their own.
        Checkouts, which read no other worktree's metadata, go on meanwhile; agents wait
        until every add is done (`take_fresh`, `check_out`): the adds are what an agent's
        `git branch` or `git worktree list` could read half written (the module's doc)."""
        self._pending = dict.fromkeys(p for p, _ in new)

        def add_all() -> None:
            # The adds hold a checkout turn, ahead of every launch: each add is a short
            # CPU-bound git process, and every first agent waits for the last one. With
            # the rest of the cores checking out beside them, on 2 cores 20 adds took
            # 165 ms; with one core of their own, ~110 ms (a 20-task DAG, 400 files).
            turn = self._checkouts.acquire(self._adds_ticket)
            try:
                add_each()
            finally:  # whatever happened, no launch waits for an add that will not come
                if turn:  # kept for the integration checkout, next (see there)
                    keep = _ADDS_RANK if self._integration is not None else None
                    self._checkouts.release(keep_for=keep)
                with self._added:
                    self._pending.clear()
                    self._added.notify_all()

        def add_each() -> None:
            # Every branch in one process first; each add then makes one process fewer.
            try:
                self.git.create_branches([b for _, b in new], base)
                start: str | None = None
            except GitError as exc:
                log.warning("task branches not made at once (%s): one at a time", exc.message)
                start = base
            for path, branch in new:
                try:
                    if self._stop_adding.is_set():
                        if start is None:  # made above, at the base: it holds nothing
                            self.git.delete_branch(branch, force=True)
                    else:
                        _add_new(self.git, path, branch, start)
                        with self._lock:
                            self.fresh[path] = (branch, base)
                except GitError as exc:
                    log.warning("worktree %s not made at set-up: %s", path, exc.message)
                    if start is None and path not in self.fresh:  # its launch makes both
                        with contextlib.suppress(GitError):
                            self.git.delete_branch(branch, force=True)
                finally:
                    with self._added:
                        self._pending.pop(path, None)
                        self._added.notify_all()

        self._adds_ticket = self._checkouts.ticket(_ADDS_RANK)  # before any launch's
        self._adds = threading.Thread(target=add_all, name="worktree-adds")
        self._adds.start()

    def wait_added(self) -> None:
        """Return once the set-up's adds are all done (at once when there were none)."""
        if self._adds is not None:
            self._adds.join()

    def stop(self) -> None:
        """The run is ending: no more adds, and wait for the background git to finish."""
        self._stop_adding.set()
        if self._warmer is not None:
            self._warmer.stop()
        self.wait_added()
        self.join_integration()

    def check_out_integration(self, path: Path) -> None:
        """Check out the integration worktree (made with `--no-checkout`) in the background,
        taking a checkout turn like a task: in a big repository it costs as much as a
        task's, and nothing needs it before the first merge or validation (`await_integration`)."""

        def check_out() -> None:
            # After the adds, which every first agent waits for, with the turn they kept
            # for it; ahead of the launches still queued (tasks waiting for an agent
            # slot), which start no sooner than the first merge that needs this checkout.
            self.wait_added()
            self._checkouts.acquire(self._checkouts.ticket(_ADDS_RANK))
            try:
                self.git.run("reset", "-q", "--hard", cwd=path)  # as Git.complete_checkout
            except GitError as exc:
                self._integration_error = exc
            finally:
                self._checkouts.release()

        # Not a daemon: the checkout is never cut short by the run's end (a kill is, and
        # the next run's set-up completes it: Git.complete_checkout).
        self._integration = threading.Thread(target=check_out, name="integration-checkout")
        self._integration.start()

    def join_integration(self) -> None:
        if self._integration is not None:
            self._integration.join()

    def await_integration(self) -> None:
        """Return once the integration worktree is checked out; raise GitError if it could
        not be."""
        self.join_integration()
        if self._integration_error is not None:
            raise self._integration_error

    def check_out(self, path: Path, commit: str, sparse: Sequence[str] | None = None) -> None:
        """Check out a worktree made without a checkout at `commit`, only `sparse`'s folders
        (and the top-level files) when given; waits for a turn (see the module's doc)."""
        warm = self._warmer.taken(path) if self._warmer is not None else None
        if warm == commit and sparse is None:  # checked out there already (cpo.run.warm)
            self.wait_added()
            return
        self._checkouts.acquire()
        try:
            if sparse is not None:
                # Before the first checkout: `reset --hard` then writes only these paths.
                folders = (*self.sparse_always, *sparse)
                self.git.run("sparse-checkout", "set", "--cone", "--", *folders, cwd=path)
            self.git.check_out(path, commit)
        finally:
            self._checkouts.release()
        self.wait_added()  # the agent starts next: no add may still be writing

    def take_fresh(self, path: Path) -> bool:
        """True once for a worktree made by the set-up: it holds nothing, only needs a
        checkout (`check_out`). Otherwise the caller handles the worktree with git
        commands of its own: only once every add is done."""
        self._wait_added(path)
        with self._lock:
            fresh = self.fresh.pop(path, None) is not None
        if not fresh:
            self.wait_added()
        return fresh

    def remove_unused(self) -> None:
        """Remove the worktrees (and their new branches) that no task used. Called when no
        agent runs any more, so removing metadata races no reader."""
        if self._warmer is not None:
            self._warmer.stop()
        self.wait_added()
        with self._lock:
            unused, self.fresh = dict(self.fresh), {}
        for path, (branch, commit) in unused.items():
            try:
                self.git.remove_worktree(path, force=True)
                if self.git.rev(f"refs/heads/{branch}") == commit:
                    self.git.delete_branch(branch, force=True)
            except GitError as exc:  # left as it is: --resume reuses it, clean removes it
                log.warning("could not remove unused worktree %s: %s", path, exc.message)


def inside_repo(folder: Path, repo: Path) -> tuple[str, ...]:
    """`folder` relative to the repository, for sparse checkouts (none if outside it)."""
    try:
        rel = folder.resolve().relative_to(repo.resolve())
    except ValueError:
        return ()
    return (rel.as_posix(),) if rel.parts else ()


@dataclass(frozen=True)
class Seen:
    """The registered worktrees and the local branches as the set-up's checks listed them
    (cpo.gitmemo.snapshot): a first run's set-up decides from these rather than ask git
    again (two processes on the way to the first agent). What the run itself adds
    meanwhile (the integration branch and worktree) is none of the tasks'."""

    worktrees: dict[Path, str | None]
    branches: set[str]

    @classmethod
    def now(cls, git: Git) -> Seen:
        return cls(git.worktrees(), git.local_branches())


def make_worktrees(
    git: Git,
    wanted: Iterable[tuple[Path, str]],
    base: str,
    sparse_always: tuple[str, ...] = (),
    *,
    background: bool = False,
    seen: Seen | None = None,
) -> RunWorktrees:
    """Add the worktree of each (path, branch) that is not there yet, without a checkout.

    A branch that already exists (an earlier run's, which may hold work) gets its worktree
    on it; a new branch starts at `base`. A worktree git refuses here is left for the
    task's launch, which reports the problem as that task's failure. `seen`: git's lists
    as the set-up saw them, if nothing but the run's integration changed since.
    """
    made = RunWorktrees(git, sparse_always=sparse_always)
    wanted = list(wanted)
    # A worktree an earlier run's kill left half added holds nothing, and nothing could
    # be done in it: removed here, it is missing below and added again (cpo.run.killedadd).
    if mend_killed_adds(git, (p for p, _ in wanted)) or seen is None:
        seen = Seen.now(git)
    registered, branches = seen.worktrees, seen.branches
    missing = [(p, b) for p, b in wanted if not (p.is_dir() and p.resolve() in registered)]
    if any(p.resolve() in registered for p, _ in missing):
        git.prune_worktrees()  # a worktree folder was deleted by hand
    if background and not any(b in branches for _, b in missing):
        # A first run: every worktree new, nothing of an earlier attempt to look after
        # in them before the checkout.
        made.add_in_background(missing, base)
        return made
    for path, branch in missing:
        try:
            if branch in branches:
                git.add_worktree(path, branch, checkout=False)
            else:
                _add_new(git, path, branch, base)
                made.fresh[path] = (branch, base)
        except GitError as exc:
            log.warning("worktree %s not made at set-up: %s", path, exc.message)
    return made


def _add_new(git: Git, path: Path, branch: str, start: str | None) -> None:
    """A worktree on a new branch: made here at `start`, or already made (None).
    -f: a new branch is checked out nowhere, and no registered worktree is missing
    (make_worktrees pruned them). git then skips scans of every worktree's metadata,
    which make each add cost O(worktrees): ~40 % of the adds' time at 60 tasks."""
    git.add_worktree(path, branch, start, checkout=False, force=True)
