"""The orphan killer: nothing a run starts outlives it, even when cpo is killed.

A separate process in its own session, run by path (`python -I -S watchdog.py GRACE
RUN_ID`): no import of cpo, and of the standard library only modules that load in no
time, because it starts beside every run's first checkouts, on the cores they want. cpo
tells it each process group it starts ("+PGID", "-PGID" lines on stdin). Its stdin's only
writer is cpo, so end-of-file means cpo is gone, even by SIGKILL, or its run ended: it
then stops every group it was told about and every process whose environment carries the
run's tag (`CPO_RUN_ID=<id>`, which cpo.proc gives each process it starts). The tag finds
what left its group (`setsid`, a daemon's double fork) and lives on with the environment
it inherited. TERM first, KILL after the grace.

Importable too: cpo.watchdogclient starts it and `tagged_pids` reads the tags.
"""

from __future__ import annotations

import os
import sys
import time

# The signal numbers from the C module: `signal` wraps them in enums, and importing enum
# was two thirds of this process's start-up (~7 of ~10 ms). No contextlib either.
from _signal import SIGKILL, SIGTERM  # type: ignore[import-not-found]

RUN_ID_VAR = "CPO_RUN_ID"
_PROC = "/proc"


def tagged_pids(run_id: str) -> set[int]:
    """Live processes (not zombies: those have no environment) tagged with `run_id`.

    Linux only (/proc); elsewhere empty: the groups cpo told about are all it has.
    """
    needle = f"\0{RUN_ID_VAR}={run_id}\0".encode()
    me = os.getpid()
    found: set[int] = set()
    try:
        names = os.listdir(_PROC)
    except OSError:
        return found
    for name in names:
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"{_PROC}/{name}/environ", "rb") as fh:
                env = b"\0" + fh.read()
        except OSError:  # gone, or another user's
            continue
        if needle in env:
            found.add(int(name))
    return found


def _signal_all(groups: set[int], pids: set[int], sig: int) -> set[int]:
    """Send `sig` to each group and process; the groups that still exist. Never to group
    0 (this process's own), 1 (init's: in a container, everything) or a negative one, nor
    to pid 1 or this process, whatever came in on stdin: a run's groups are its agents',
    each led by an agent cpo started (pid > 1)."""
    alive = set()
    mine = {0, 1, os.getpgrp()}
    for group in groups:
        if group < 0 or group in mine:
            continue
        try:
            os.killpg(group, sig)
            alive.add(group)
        except OSError:
            pass
    for pid in pids:
        if pid <= 1 or pid == os.getpid():
            continue
        try:  # noqa: SIM105 (contextlib: see the imports)
            os.kill(pid, sig)
        except OSError:
            pass
    return alive


def stop_everything(groups: set[int], run_id: str, grace: float) -> None:
    """TERM to every group and tagged process, KILL to what is left after `grace`."""
    groups = _signal_all(groups, tagged_pids(run_id), SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        groups = _signal_all(groups, set(), 0)
        if not groups and not tagged_pids(run_id):
            return
        time.sleep(0.1)
    _signal_all(groups, tagged_pids(run_id), SIGKILL)


def main(argv: list[str]) -> None:
    grace, run_id = float(argv[1]), argv[2]
    groups: set[int] = set()
    for line in sys.stdin:
        line = line.strip()
        if line[:1] == "+":
            groups.add(int(line[1:]))
        elif line[:1] == "-":
            groups.discard(int(line[1:]))
    stop_everything(groups, run_id, grace)


if __name__ == "__main__":
    main(sys.argv)
