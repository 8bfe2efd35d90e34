"""cpo's side of the orphan killer (cpo.watchdog): start it, tell it each process group,
stop it at the end of the run. Kept apart from the watchdog's own module, which runs as a
script that imports no more than it needs."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading

from cpo import watchdog


class Watchdog:
    """cpo's side: start the watchdog process, tell it each group, stop it at the end."""

    def __init__(self, grace: float, run_id: str) -> None:
        self.grace = grace
        self.run_id = run_id
        self._lock = threading.Lock()
        self._groups: set[int] = set()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        """Start it (once), telling it the groups registered so far."""
        with self._lock:
            if self._proc is not None:
                return
            self._proc = subprocess.Popen(
                # -I: isolated, so cpo's folder does not shadow the standard library; -S:
                # no site-packages, which it does not need (a few ms of every run's start).
                [
                    sys.executable,
                    "-I",
                    "-S",
                    os.path.abspath(watchdog.__file__),
                    str(self.grace),
                    self.run_id,
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C to our group must not kill it first
                close_fds=True,
            )
            for group in self._groups:
                self._write(f"+{group}")

    def tell(self, group: int, *, alive: bool) -> None:
        with self._lock:
            (self._groups.add if alive else self._groups.discard)(group)
            self._write(f"{'+' if alive else '-'}{group}")

    def _write(self, line: str) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            return
        with contextlib.suppress(OSError, ValueError):
            proc.stdin.write(line.encode() + b"\n")
            proc.stdin.flush()

    def stop(self) -> None:
        """End of the run: it stops what is left (tagged escapees) and exits; wait for it."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError, ValueError):
            if proc.stdin:
                proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=self.grace + 2)
