from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cpo.errors import LockedError
from cpo.run.lock import LOCK_FILE, RunLock, lock_held, read_lock


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


# A worker that, on "go <dir> <when>", waits until `when` then tries the lock, says
# "won" or "lost", and on "release" lets go. Long-lived, so 200 rounds stay fast.
_LOCK_WORKER = r"""
import sys, time
from pathlib import Path
from cpo.errors import LockedError
from cpo.run.lock import RunLock
lock = None
for line in sys.stdin:
    words = line.split()
    if words[0] == "go":
        when = float(words[2])
        while time.time() < when:
            pass
        lock = RunLock(Path(words[1]))
        try:
            lock.acquire()
            print("won", flush=True)
        except LockedError:
            lock = None
            print("lost", flush=True)
    else:
        if lock is not None:
            lock.release()
        print("released", flush=True)
"""


def test_racing_processes_never_both_take_the_lock(tmp_path: Path) -> None:
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _LOCK_WORKER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        for round_no in range(200):
            start = time.time() + 0.005  # every worker tries at the same moment
            for w in workers:
                assert w.stdin is not None
                w.stdin.write(f"go {tmp_path} {start}\n")
                w.stdin.flush()
            answers = [w.stdout.readline().strip() for w in workers if w.stdout is not None]
            assert sorted(answers) == ["lost", "lost", "won"], f"round {round_no}: {answers}"
            holder = read_lock(tmp_path)
            winner = workers[answers.index("won")]
            assert holder is not None and holder.pid == winner.pid
            for w in workers:
                assert w.stdin is not None and w.stdout is not None
                w.stdin.write("release\n")
                w.stdin.flush()
                assert w.stdout.readline().strip() == "released"
            assert not lock_held(tmp_path)
    finally:
        for w in workers:
            w.kill()
            w.wait()
