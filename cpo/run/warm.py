"""Warm checkouts: a task's worktree checked out at the base while the task still waits.

The set-up adds every worktree without a checkout (cpo.run.worktrees), so a task's launch
writes every file of the repository before its agent can start. For a task that launches
at once that cannot be helped; for one that waits (a dependent, a later wave's task, one
of more tasks than agent slots) it can: `Warmer` checks the next waiting worktrees out at
the base in the background, a few ahead of the launches, with a checkout turn that any
launch's checkout goes before (a higher rank on the same gate). The launch then moves the
worktree from the base to its start point, which writes only the files that differ: a
dependent starts ~20 ms sooner in a 400-file repository, seconds sooner in a large one.

A warm worktree still holds nothing but the base: it stays "fresh" (removed unused at the
end), and a kill during its checkout is mended like any unfinished checkout. Sparse tasks
and the shared worktrees of a plan file's streams are never warmed (their first checkout
is shaped by the launch).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from cpo.errors import GitError
from cpo.git import Git
from cpo.logfile import log
from cpo.run.slots import Slots

# Behind any launch's checkout on the gate (launches take rank 0).
_LOW_RANK = 1


class Warmer:
    def __init__(self, git: Git, gate: Slots, ahead: int) -> None:
        self.git, self.gate = git, gate
        self._room = threading.Semaphore(max(1, ahead))  # warm and not yet taken, at most
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._path_locks: dict[Path, threading.Lock] = {}
        self._warm: set[Path] = set()  # checked out at the base, not taken yet
        self._base = ""
        self._thread: threading.Thread | None = None

    def start(
        self,
        order: Sequence[Path],
        base: str,
        added: Callable[[], None],
        still_fresh: Callable[[Path], bool],
    ) -> None:
        """Warm `order`'s worktrees in turn at `base`, once `added` returns (the worktrees
        exist); `still_fresh`: no launch took it yet."""
        with self._lock:
            self._path_locks = {p: threading.Lock() for p in order}
            self._base = base

        def warm_all() -> None:
            added()
            for path in order:
                while not self._room.acquire(timeout=0.2):
                    if self._stop.is_set():
                        return
                if self._stop.is_set():
                    return
                if not still_fresh(path) or not self._warm_one(path, still_fresh):
                    self._room.release()

        # A daemon: it may wait for room forever if the run fails before `stop`; a git
        # process it started finishes on its own even then.
        self._thread = threading.Thread(target=warm_all, name="warm-checkouts", daemon=True)
        self._thread.start()

    def _warm_one(self, path: Path, still_fresh: Callable[[Path], bool]) -> bool:
        ticket = self.gate.ticket(_LOW_RANK)
        if not self.gate.acquire(ticket):
            return False
        try:
            with self._path_locks[path]:
                if self._stop.is_set() or not still_fresh(path):
                    return False
                self.git.check_out(path, self._base)
                with self._lock:
                    self._warm.add(path)
                return True
        except GitError as exc:  # the launch's own checkout will say what is wrong
            log.warning("warm checkout of %s failed: %s", path, exc.message)
            return False
        finally:
            self.gate.release()

    def taken(self, path: Path) -> str | None:
        """A launch takes `path`: wait for a warm checkout in progress there; the commit
        it is checked out at (the base) if warm, else None."""
        lock = self._path_locks.get(path)
        if lock is None:
            return None
        with lock:
            with self._lock:
                if path not in self._warm:
                    return None
                self._warm.discard(path)
            self._room.release()
            return self._base

    def stop(self) -> None:
        """No more warm checkouts; the one in progress, if any, ends first (the unused
        worktrees are removed next)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
