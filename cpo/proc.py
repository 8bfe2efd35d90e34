"""Spawn agents, stream their output as it arrives, and make sure none outlives cpo.

Every agent runs in its own session (so its whole process tree is one process group we
can signal), with its prompt written on stdin from a thread (a large prompt would
otherwise deadlock against an agent that writes before it reads everything).

Stopping follows the tox ladder: SIGTERM to the group, a grace period, then SIGKILL.
Even when the leader exits by itself, the group is swept, because an agent's leftover
background children would keep our pipes open and live on after the task.

If cpo itself dies (even by SIGKILL) a small watchdog process (cpo.watchdog), which
holds the read end of a pipe whose only writer is cpo, sees end-of-file and kills every
group cpo had registered, and every process carrying the run's tag in its environment:
nothing cpo started outlives it. (cpo.orphans covers what escapes while cpo lives.)
"""

from __future__ import annotations

import codecs
import contextlib
import os
import signal
import subprocess
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cpo.logfile import log
from cpo.watchdog import RUN_ID_VAR
from cpo.watchdogclient import Watchdog

# Longest line handed to a parser at once; a longer one is split. Keeps memory flat
# when an agent prints megabytes without a newline.
MAX_LINE_BYTES = 1 << 20
# At most this much of a cut line is held back to go with the next piece.
MAX_CARRY = 64 * 1024
STDERR_TAIL_LINES = 40
DEFAULT_GRACE = 5.0
WAKE_UP = 0.25  # seconds; see _wait_within


@dataclass(frozen=True)
class ProcResult:
    returncode: int | None
    duration: float
    timed_out: bool = False
    idle_timed_out: bool = False
    interrupted: bool = False
    aborted: bool = False  # stopped early because its output showed it cannot succeed
    stderr_tail: str = ""


class ProcessRegistry:
    """The live process groups of this cpo process, for interrupt and watchdog.

    Every process started through it carries the run's tag in its environment
    (cpo.watchdog.RUN_ID_VAR), which its descendants inherit: the watchdog finds by it
    those that left their group. A `sibling` (e.g. for wave validations) is stopped on
    its own but shares the tag and the watchdog.
    """

    def __init__(self, grace: float = DEFAULT_GRACE, *, watchdog: Watchdog | None = None) -> None:
        self.grace = grace
        self.watchdog = watchdog or Watchdog(grace, uuid.uuid4().hex)
        self._lock = threading.Lock()
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self.cancelled = threading.Event()
        self._on_cancel: list[Callable[[], None]] = []

    @property
    def run_id(self) -> str:
        return self.watchdog.run_id

    def sibling(self) -> ProcessRegistry:
        return ProcessRegistry(self.grace, watchdog=self.watchdog)

    def when_cancelled(self, callback: Callable[[], None]) -> None:
        """Call `callback` once `terminate_all` cancels the registry (e.g. to wake waiters)."""
        self._on_cancel.append(callback)

    # -- watchdog -----------------------------------------------------------------
    def start_watchdog(self) -> None:
        """Start the orphan killer (cpo.watchdog); safe to call more than once."""
        self.watchdog.start()

    def stop_watchdog(self) -> None:
        """It stops whatever tagged process is left, then exits."""
        self.watchdog.stop()

    # -- registry -----------------------------------------------------------------
    def add(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs[proc.pid] = proc
        self.watchdog.tell(proc.pid, alive=True)

    def remove(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs.pop(proc.pid, None)
        self.watchdog.tell(proc.pid, alive=False)

    def live_count(self) -> int:
        with self._lock:
            return len(self._procs)

    def terminate_all(self, *, immediately: bool = False) -> None:
        """Stop every agent: SIGTERM to each group, then SIGKILL after the grace period."""
        self.cancelled.set()
        with self._lock:
            procs = list(self._procs.values())
        for callback in self._on_cancel:  # e.g. tasks waiting for an agent slot give up
            callback()
        for p in procs:
            kill_group(p.pid, signal.SIGKILL if immediately else signal.SIGTERM)
        if immediately:
            return
        deadline = time.monotonic() + self.grace
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
        for p in procs:
            kill_group(p.pid, signal.SIGKILL)


def kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def exit_event(proc: subprocess.Popen[bytes]) -> threading.Event:
    """An event set the moment `proc` exits (its return code is then set).

    `Popen.wait(timeout)` polls with sleeps growing to 50 ms, so it notices an exit ~25 ms
    late on average: every agent's slot would idle that long. A thread blocked in waitpid
    wakes at once.
    """
    exited = threading.Event()

    def wait() -> None:
        with contextlib.suppress(Exception):
            proc.wait()
        exited.set()

    threading.Thread(target=wait, name=f"wait-{proc.pid}", daemon=True).start()
    return exited


def _stop_group(proc: subprocess.Popen[bytes], grace: float, exited: threading.Event) -> None:
    kill_group(proc.pid, signal.SIGTERM)
    exited.wait(grace)
    kill_group(proc.pid, signal.SIGKILL)


def _write_stdin(stream: IO[bytes] | None, data: bytes) -> None:
    if stream is None:
        return
    # The agent may exit without reading all of it; that is its business, not an error.
    with contextlib.suppress(BrokenPipeError, OSError, ValueError):
        stream.write(data)
    with contextlib.suppress(BrokenPipeError, OSError, ValueError):
        stream.close()


def _guarded(sink: Callable[[str], None]) -> Callable[[str], None]:
    """`sink`, but a line it fails on is logged (logs/cpo.log) instead of ending the
    reader: a dead reader stops draining the pipe, and an agent writing to a full pipe
    waits forever."""

    def feed(line: str) -> None:
        try:
            sink(line)
        except Exception:
            log.exception("an output line could not be handled; reading on")

    return feed


def _pump(
    stream: IO[bytes],
    sink: Callable[[str], None],
    touched: Callable[[], None],
    split: Callable[[str], int],
) -> None:
    """Feed `stream` to `sink` line by line; a line longer than MAX_LINE_BYTES goes in
    pieces, cut where `split` says (so a secret is never cut in two and masked as two
    harmless halves), with the rest carried into the next piece."""
    sink = _guarded(sink)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # keeps a cut character whole
    carry = ""
    while True:
        chunk = stream.readline(MAX_LINE_BYTES)
        if not chunk:
            break
        touched()
        whole = chunk.endswith(b"\n") or len(chunk) < MAX_LINE_BYTES  # a line, or the last
        text = carry + decoder.decode(chunk, final=whole)
        if whole:
            carry = ""
            sink(text.rstrip("\r\n"))
            continue
        cut = max(split(text), len(text) - MAX_CARRY, 1)
        carry = text[cut:]
        sink(text[:cut])
    if carry:
        sink(carry)
    stream.close()


class _Output:
    """A running process's output: lines to the callbacks, the time of the last one, the
    stderr tail, and the early stop a callback may ask for through `abort`."""

    def __init__(
        self,
        on_stdout: Callable[[str], None],
        on_stderr: Callable[[str], None],
        abort: threading.Event | None,
    ) -> None:
        self.on_stdout = on_stdout
        self.on_stderr = on_stderr
        self.abort = abort
        self.last = time.monotonic()
        self.tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self.stopping = threading.Event()
        self.stop_early: Callable[[], None] = lambda: None

    def touched(self) -> None:
        self.last = time.monotonic()

    def stdout(self, line: str) -> None:
        self.on_stdout(line)
        # On a reader thread right after the callback: stop in the background so the
        # reader keeps draining the pipe while the group gets TERM, then KILL.
        if self.abort is not None and self.abort.is_set() and not self.stopping.is_set():
            self.stopping.set()
            threading.Thread(target=self.stop_early, daemon=True).start()

    def stderr(self, line: str) -> None:
        self.tail.append(line)
        self.on_stderr(line)


def _start_io(
    proc: subprocess.Popen[bytes], stdin_text: str, out: _Output, split: Callable[[str], int]
) -> list[threading.Thread]:
    """Threads that feed stdin and pump stdout/stderr; the pumps come after the writer."""
    assert proc.stdout is not None and proc.stderr is not None
    pumps = [(proc.stdout, out.stdout), (proc.stderr, out.stderr)]
    threads = [
        threading.Thread(target=_write_stdin, args=(proc.stdin, stdin_text.encode()), daemon=True),
        *(
            threading.Thread(target=_pump, args=(stream, sink, out.touched, split), daemon=True)
            for stream, sink in pumps
        ),
    ]
    for t in threads:
        t.start()
    return threads


def _wait_within(
    exited: threading.Event,
    out: _Output,
    start: float,
    timeout: float | None,
    idle_timeout: float | None,
) -> tuple[bool, bool]:
    """Wait for the exit or a deadline; (timed out, idle timed out)."""
    while True:
        deadlines = []
        if timeout is not None:
            deadlines.append(start + timeout)
        if idle_timeout is not None:
            deadlines.append(out.last + idle_timeout)
        wait_for = max(0.0, min(deadlines) - time.monotonic()) if deadlines else WAKE_UP
        # Never blocked for long: on the main thread (wave validations) a Ctrl-C that the
        # kernel hands to another thread only runs its Python handler once this wakes.
        if exited.wait(min(wait_for, WAKE_UP)):
            return False, False
        now = time.monotonic()
        if timeout is not None and now >= start + timeout:
            return True, False
        if idle_timeout is not None and now >= out.last + idle_timeout:
            return False, True
        # output arrived meanwhile: the idle deadline moved


def run_streaming(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    stdin_text: str = "",
    on_stdout: Callable[[str], None] = lambda _line: None,
    on_stderr: Callable[[str], None] = lambda _line: None,
    timeout: float | None = None,
    idle_timeout: float | None = None,
    registry: ProcessRegistry | None = None,
    abort: threading.Event | None = None,
    split: Callable[[str], int] = len,
) -> ProcResult:
    """Run argv to the end, feeding each output line to the callbacks as it arrives.

    A line longer than MAX_LINE_BYTES reaches the callbacks in pieces, each cut where
    `split(piece)` says (default: at the end; the task's masker keeps secrets whole).

    A callback may set `abort` to stop the process early (TERM, then KILL after the grace
    period); the result then says `aborted`.

    Returns when the process has exited and its group has been swept. A process that
    cannot be started raises OSError (the caller turns it into a task failure).
    """
    registry = registry or ProcessRegistry()
    if registry.cancelled.is_set():
        return ProcResult(returncode=None, duration=0.0, interrupted=True)
    start = time.monotonic()
    out = _Output(on_stdout, on_stderr, abort)
    proc = subprocess.Popen(
        list(argv),
        cwd=str(cwd),
        env={**env, RUN_ID_VAR: registry.run_id},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # own process group: signals reach the whole tree
        close_fds=True,
    )
    registry.add(proc)
    exited = exit_event(proc)
    out.stop_early = lambda: _stop_group(proc, registry.grace, exited)
    threads = _start_io(proc, stdin_text, out, split)
    if registry.cancelled.is_set():
        # Cancelled while it was starting: terminate_all (which cancels first, then looks
        # at the registry) may have missed it.
        threading.Thread(target=out.stop_early, daemon=True).start()
    timed_out = idle_out = False
    try:
        timed_out, idle_out = _wait_within(exited, out, start, timeout, idle_timeout)
    finally:
        # Sweep stragglers (background children) so they neither outlive the task
        # nor hold our pipes open.
        if not exited.is_set():
            _stop_group(proc, registry.grace, exited)
            exited.wait()
        kill_group(proc.pid, signal.SIGKILL)
        for t in threads[1:]:
            t.join(timeout=registry.grace)
        registry.remove(proc)

    return ProcResult(
        returncode=proc.returncode,
        duration=time.monotonic() - start,
        timed_out=timed_out,
        idle_timed_out=idle_out,
        interrupted=registry.cancelled.is_set() and not (timed_out or idle_out),
        aborted=out.stopping.is_set(),
        stderr_tail="\n".join(out.tail),
    )


def run_capture(
    argv: Sequence[str] | str,
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    shell: bool = False,
    timeout: float | None = None,
    registry: ProcessRegistry | None = None,
) -> tuple[int | None, str, bool]:
    """Run a short command (validation, preflight), returning (code, combined output, timed out).

    `shell=True` is only for the user's own command strings (wave validations).
    """
    lines: list[str] = []
    cmd: Sequence[str] = ["/bin/sh", "-c", argv] if shell and isinstance(argv, str) else argv
    assert not isinstance(cmd, str)
    result = run_streaming(
        cmd,
        cwd=cwd,
        env=env if env is not None else os.environ,
        on_stdout=lines.append,
        on_stderr=lines.append,
        timeout=timeout,
        registry=registry,
    )
    return result.returncode, "\n".join(lines), result.timed_out
