"""Agent slots: at most N agents at once, handed out by launch rank.

Tasks take a slot only around the agent itself, so their worktree set-up and bookkeeping
overlap with other agents' work instead of holding a slot idle. Every launched task holds
a ticket (rank, launch number); a free slot goes to the lowest ticket whose task is ready
for it. So a task on the critical path that becomes ready while prepared tasks wait goes
before them, and equal ranks keep launch order (runs stay predictable).

Reservations close the one gap left: when an agent ends, the task its merge will unblock
does not hold a ticket yet (the merge and its launch take a few tens of milliseconds), so
a waiting task of lower rank would take the freed slot and the critical task would wait a
whole agent's time. `release(keep_for=rank)` keeps the slot for that rank until its ticket
arrives or the reservation lapses. On random DAGs this cuts the tail of the makespan
(bench/README.md).
"""

from __future__ import annotations

import bisect
import threading
import time

Ticket = tuple[int, int]  # (rank, launch number)

# How long a reserved slot waits for its task's ticket before anyone may take it. The
# merge and launch normally take ~50 ms; this only bounds a case gone wrong (the merge
# conflicted, the run was halted) and is not waited for otherwise.
RESERVATION_SECONDS = 2.0

_RESERVED = -1  # launch number of a reservation: before every real ticket of its rank


class Slots:
    def __init__(self, count: int | None, cancelled: threading.Event) -> None:
        self._free = count  # None: unlimited
        self._cancelled = cancelled
        self._changed = threading.Condition(threading.Lock())
        self._held = False
        self.hold_reason: str | None = None
        self._next = 0
        self._tickets: list[Ticket] = []  # issued, not served or dropped; sorted
        self._lapses: dict[int, float] = {}  # reserved rank -> monotonic deadline

    def ticket(self, rank: int = 0) -> Ticket:
        with self._changed:
            ticket = (rank, self._next)
            self._next += 1
            self._unreserve(rank)  # if a slot was kept for this rank, this task takes it
            bisect.insort(self._tickets, ticket)
            self._changed.notify_all()
            return ticket

    def drop(self, ticket: Ticket) -> None:
        with self._changed:
            if ticket in self._tickets:
                self._tickets.remove(ticket)
                self._changed.notify_all()

    def acquire(self, ticket: Ticket | None = None) -> bool:
        """Wait for a free slot and our turn; False when launches were stopped."""
        if ticket is None:
            ticket = self.ticket()
        with self._changed:
            if ticket not in self._tickets:  # dropped meanwhile: queue it again
                bisect.insort(self._tickets, ticket)
            try:
                while not self._turn(ticket):
                    if self._cancelled.is_set() or self._held:
                        return False
                    self._changed.wait(self._until_lapse())
                if self._cancelled.is_set() or self._held:
                    return False
                if self._free is not None:
                    self._free -= 1
                return True
            finally:
                if ticket in self._tickets:
                    self._tickets.remove(ticket)
                self._changed.notify_all()

    def release(self, keep_for: int | None = None) -> None:
        """Free a slot; with `keep_for`, keep it for that rank if no waiting task outranks it."""
        with self._changed:
            if self._free is not None:
                self._free += 1
            if keep_for is not None and not self._held and not self._cancelled.is_set():
                head = self._tickets[0] if self._tickets else None
                if keep_for not in self._lapses and (head is None or keep_for < head[0]):
                    bisect.insort(self._tickets, (keep_for, _RESERVED))
                    self._lapses[keep_for] = time.monotonic() + RESERVATION_SECONDS
            self._changed.notify_all()

    def unreserve(self, rank: int) -> None:
        """The task a slot was kept for will not come (e.g. its dependency conflicted)."""
        with self._changed:
            self._unreserve(rank)
            self._changed.notify_all()

    def hold(self, reason: str) -> None:
        """No agent starts from now on; the running ones go on (fail-fast, auth)."""
        with self._changed:
            self._held = True
            self.hold_reason = self.hold_reason or reason
            self._changed.notify_all()

    def wake(self) -> None:
        """Let waiters look at the cancelled flag again."""
        with self._changed:
            self._changed.notify_all()

    # -- inside the lock ------------------------------------------------------------------
    def _turn(self, ticket: Ticket) -> bool:
        # Our turn when fewer tickets (reservations included) are ahead of us than
        # there are free slots.
        self._drop_lapsed()
        return self._free is None or self._tickets.index(ticket) < self._free

    def _unreserve(self, rank: int) -> None:
        if (rank, _RESERVED) in self._tickets:
            self._tickets.remove((rank, _RESERVED))
        self._lapses.pop(rank, None)

    def _drop_lapsed(self) -> None:
        now = time.monotonic()
        for rank, deadline in list(self._lapses.items()):
            if deadline <= now:
                self._unreserve(rank)

    def _until_lapse(self) -> float | None:
        """Seconds until the next reservation lapses (a timed wait, not a poll); None: none."""
        if not self._lapses:
            return None
        return max(0.0, min(self._lapses.values()) - time.monotonic())
