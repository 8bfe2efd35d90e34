"""The worker's agent lives no longer than the worker: SIGTERM, SIGINT, or the death of the
worker's parent (a job runner that was killed) stop the agent's whole process group.

A cluster stops a job by signalling its entrypoint (Ray's `stop_job`: SIGTERM to the
process and its descendants, SIGKILL later); an agent in its own session escapes a
signal to the job's group, so the worker passes it on (`ProcessRegistry.terminate_all`:
TERM to each group, KILL after the grace). A SIGKILL to the worker itself is the
watchdog's (cpo.watchdog), which the registry starts.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from types import FrameType

from cpo.proc import ProcessRegistry

PARENT_POLL = 0.5  # seconds between looks at the parent


class Lifeline:
    """While active: a stop signal or the parent's death cancels `registry`'s agents."""

    def __init__(self, registry: ProcessRegistry, on_stop: Callable[[str], None]) -> None:
        self.registry = registry
        self.on_stop = on_stop
        self.parent = os.getppid()
        self.stopped: str | None = None  # why, once stopped
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._previous: dict[int, object] = {}

    def __enter__(self) -> Lifeline:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            self._previous[sig] = signal.signal(sig, self._signalled)
        threading.Thread(target=self._watch_parent, name="parent-watch", daemon=True).start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]

    def _signalled(self, signum: int, _frame: FrameType | None) -> None:
        self.stop(f"the worker got {signal.Signals(signum).name}")

    def _watch_parent(self) -> None:
        while not self._done.wait(PARENT_POLL):
            if os.getppid() != self.parent:  # re-parented: the parent is gone
                self.stop(f"the worker's parent (pid {self.parent}) is gone")
                return

    def stop(self, why: str) -> None:
        """Stop the agent (once), off the calling thread: a signal handler must not block."""
        with self._lock:
            if self.stopped is not None:
                return
            self.stopped = why
        self.on_stop(f"[cpo] {why}: stopping the agent")
        threading.Thread(target=self.registry.terminate_all, daemon=True).start()
