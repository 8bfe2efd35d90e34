"""Write status changes into a plan file: atomically, one at a time, never over a hand edit.

Streams finish tasks at the same moment; each change is applied to the text this writer
last wrote (under a lock), so none is lost. Before writing, the file on disk is compared
with those bytes: if someone edited the plan meanwhile, the writer stops writing (the
user's edit wins) and says so through `PlanEditedError`.
"""

from __future__ import annotations

import os
import tempfile
import threading
from datetime import date
from pathlib import Path

from cpo.errors import CpoError, ExitCode, UsageError
from cpo.planfile.edit import set_status


class PlanEditedError(CpoError):
    exit_code = ExitCode.FAILED


def read_plan_text(path: Path) -> tuple[bytes, str]:
    """The plan's bytes and its text. Raises CpoError when it is not UTF-8."""
    data = path.read_bytes()
    try:
        return data, data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` by `data` in one rename, keeping its permissions."""
    mode = path.stat().st_mode & 0o7777 if path.exists() else None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class PlanWriter:
    """The one writer of a plan file during a run."""

    def __init__(self, path: Path, today: date | None = None) -> None:
        self.path = path
        self.today = today
        self.lock = threading.Lock()
        self.expected, self.original = read_plan_text(path)
        # Every change is applied to the plan as it was read, not to the last version: a
        # cell that was widened for TASK:IN_PROGRESS gets its own width back afterwards.
        self.changes: dict[str, tuple[str, str | None]] = {}
        self.edited: PlanEditedError | None = None

    def set(self, task_id: str, status: str, *, dated: bool = False) -> bool:
        """Write `status` (and today's date when `dated`) for `task_id`; False when the
        plan was edited by hand (then nothing is written, now or later)."""
        with self.lock:
            if self.edited is not None:
                return False
            on_disk = self.path.read_bytes() if self.path.exists() else b""
            if on_disk != self.expected:
                self.edited = PlanEditedError(
                    f"{self.path}: the plan was edited while cpo was running; cpo did not "
                    f"write {task_id}'s status {status} over the edit",
                    hint="let the run end (or stop it), then run the plan again: finished "
                    "tasks are marked TASK:COMPLETE only if cpo could write them",
                )
                return False
            day = (self.today or date.today()).isoformat() if dated else None
            old_day = self.changes.get(task_id, ("", None))[1]
            self.changes[task_id] = (status, day or old_day)
            data = apply_changes(self.original, self.changes).encode("utf-8")
            if data != self.expected:
                write_atomic(self.path, data)
                self.expected = data
            return True


def apply_changes(text: str, changes: dict[str, tuple[str, str | None]]) -> str:
    """`text` with each task's (status, date) of `changes` written in."""
    for task_id, (status, day) in changes.items():
        text = set_status(text, task_id, status, day)
    return text
