from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from cpo.errors import LockedError
from cpo.run.lock import LOCK_FILE, RunLock, read_lock


def test_lock_refuses_a_live_holder_and_takes_over_a_dead_one(tmp_path: Path) -> None:
    first = RunLock(tmp_path)
    first.acquire()
    holder = read_lock(tmp_path)
    assert holder is not None and holder.pid == os.getpid()
    with pytest.raises(LockedError, match=f"pid {os.getpid()}"):
        RunLock(tmp_path).acquire()
    first.release()
    assert not (tmp_path / LOCK_FILE).exists()
    (tmp_path / LOCK_FILE).write_text(
        json.dumps({"pid": 2**22 + 12345, "host": socket.gethostname(), "started_at": "then"})
    )
    second = RunLock(tmp_path)
    second.acquire()
    assert second.taken_over is not None and second.taken_over.started_at == "then"
    second.release()


def test_half_written_lock_is_stale(tmp_path: Path) -> None:
    (tmp_path / LOCK_FILE).write_text("{")
    lock = RunLock(tmp_path)
    lock.acquire()
    lock.release()


def test_release_leaves_another_holders_lock(tmp_path: Path) -> None:
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": 1, "host": "h", "started_at": "x"}))
    RunLock(tmp_path).release()
    assert (tmp_path / LOCK_FILE).exists()
