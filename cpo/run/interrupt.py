"""Ctrl-C and SIGTERM during a run: stop launching, stop the agents, keep the state.

The handler only sets flags and starts the stopping in threads: the scheduler notices the
stop event and the agents' run_task calls return "interrupted" as their groups die.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from cpo.logfile import log
from cpo.proc import ProcessRegistry


def install_interrupt_handlers(
    stop: threading.Event, *registries: ProcessRegistry
) -> dict[int, Any]:
    """Ctrl-C / SIGTERM: stop launching, terminate agents (grace, then kill); twice: kill now."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    count = [0]

    def handler(signum: int, frame: FrameType | None) -> None:
        count[0] += 1
        stop.set()
        immediately = count[0] > 1
        log.warning("signal %d received (%d): stopping agents", signum, count[0])
        for reg in registries:  # a run's agents and its validations; integrate's checks
            threading.Thread(
                target=reg.terminate_all, kwargs={"immediately": immediately}, daemon=True
            ).start()

    previous: dict[int, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        previous[sig] = signal.signal(sig, handler)
    return previous


def restore_handlers(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
