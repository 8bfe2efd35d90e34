"""A worker's output, as the coordinator reads it: JSON-lines events and the verdict.

Whatever carries the worker's stdout (a child's pipe, a cluster's log stream) hands its
lines here one at a time; a line that is no event (a job runner's own output) is skipped.
A worker that ended without an `exited` line (killed, lost with its machine) still gets a
verdict: `crashed`, or `interrupted` when the coordinator stopped it.
"""

from __future__ import annotations

from cpo.executors.base import EventSink
from cpo.executors.spec import Exited, parse_event


class EventStream:
    """Feed it a worker's output lines; `verdict` says how the attempt ended."""

    def __init__(self, on_event: EventSink) -> None:
        self.on_event = on_event
        self.exited: Exited | None = None

    def feed(self, line: str) -> None:
        event = parse_event(line)
        if event is None or self.exited is not None:  # nothing counts after the verdict
            return
        if isinstance(event, Exited):
            self.exited = event
        self.on_event(event)

    def verdict(self, *, stopped: bool, detail: str) -> Exited:
        """The worker's own verdict, or one for a worker that gave none: `detail` says
        what is known (its exit status, its last error lines)."""
        if self.exited is not None:
            return self.exited
        if stopped:
            return Exited(ok=False, reason="interrupted", error="stopped by cpo")
        return Exited(
            ok=False, reason="crashed", error=f"the worker ended without a verdict: {detail}"
        )
