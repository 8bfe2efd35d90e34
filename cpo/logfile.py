"""cpo's own log: where tracebacks of internal errors go, so the screen gets one line.

A run logs to `<parallel dir>/logs/cpo.log`; commands without a parallel directory log
to the user's state folder.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

LOGGER_NAME = "cpo"
log = logging.getLogger(LOGGER_NAME)

_current: list[Path] = []


def default_log_path() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "cpo" / "cpo.log"


def use_log_file(path: Path) -> Path:
    """Send cpo's log to `path` (appending); returns it. Replaces any earlier file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for h in list(log.handlers):
        if isinstance(h, logging.FileHandler):
            log.removeHandler(h)
            h.close()
    handler = logging.FileHandler(path, encoding="utf-8")
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
