"""Log files: cpo's own log, and the size-capped logs of agents.

cpo's own log is where tracebacks of internal errors go, so the screen gets one line.
A run logs to `<parallel dir>/logs/cpo.log`; commands without a parallel directory log
to the user's state folder.

An agent's logs (`logs/<id>.log`, `logs/<id>.jsonl`) are `CappedLog`s: an agent that
prints without end must not fill the disk, nor slow cpo down writing it.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

LOGGER_NAME = "cpo"
log = logging.getLogger(LOGGER_NAME)

_current: list[Path] = []


def default_log_path() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "cpo" / "cpo.log"


class _LazyFileHandler(logging.FileHandler):
    """Opened, and its folder made, at the first record: a run refused at preflight, which
    logs nothing, leaves no `logs/cpo.log` behind."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, encoding="utf-8", delay=True)

    def _open(self) -> Any:
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()


def use_log_file(path: Path) -> Path:
    """Send cpo's log to `path` (appending); returns it. Replaces any earlier file."""
    for h in list(log.handlers):
        if isinstance(h, logging.FileHandler):
            log.removeHandler(h)
            h.close()
    handler = _LazyFileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    _current[:] = [path]
    return path


def current_log_path() -> Path:
    """The file the log goes to, opening the default one on first use."""
    if not _current:
        try:
            use_log_file(default_log_path())
        except OSError:
            import tempfile

            use_log_file(Path(tempfile.gettempdir()) / "cpo.log")
    return _current[0]


# Default for the config key `logs.max_size`: the most each agent log file grows to.
DEFAULT_LOG_LIMIT = 50_000_000
TAIL_BYTES = 64 * 1024


class CappedLog:
    """An agent log file that takes agent output until it holds `limit` bytes.

    Past the cap, one notice says so; the agent keeps running (its output is still read,
    so it never blocks on a full pipe) and only the last bytes of what it prints (a tenth
    of the cap, at most TAIL_BYTES) are kept, in memory, to be written at the end: an
    agent's last lines usually say how it ended. cpo's own lines (`note`) are always
    written. Earlier attempts' lines in the same file count toward the cap.
    """

    def __init__(self, path: Path, limit: int, notice: Callable[[str], str]) -> None:
        self._file = path.open("ab")
        self.limit = limit
        self.size = self._file.tell()
        self.dropped = 0
        self._notice = notice  # cpo's message as a line of this file's format
        self._tail: deque[bytes] = deque()
        self._tail_size = 0
        self._tail_limit = min(TAIL_BYTES, limit // 10)  # the file stays near its cap

    @property
    def capped(self) -> bool:
        return self.dropped > 0

    def write(self, line: str) -> None:
        """One line of agent output (no newline)."""
        data = line.encode("utf-8", errors="replace") + b"\n"
        if not self.capped and self.size + len(data) <= self.limit:
            self._file.write(data)
            self.size += len(data)
            return
        if not self.capped:
            self._say(
                f"log cap reached: output past {self.limit} bytes is not logged (setting"
                " logs.max_size); the agent keeps running; its last lines follow at the end"
            )
        self.dropped += len(data)
        data = data[-self._tail_limit :]
        self._tail.append(data)
        self._tail_size += len(data)
        while self._tail_size > self._tail_limit:
            self._tail_size -= len(self._tail.popleft())

    def note(self, line: str) -> None:
        """A line of cpo's own (header, stop notice), written whatever the cap."""
        self._file.write(line.encode("utf-8", errors="replace") + b"\n")

    def _say(self, message: str) -> None:
        self.note(self._notice(message))

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if self.capped:
            kept = b"".join(self._tail)
            self._say(
                f"{self.dropped - len(kept)} bytes of agent output were not logged;"
                f" its last {len(kept)} bytes follow"
            )
            self._file.write(kept)
        self._file.close()

    def __enter__(self) -> CappedLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
