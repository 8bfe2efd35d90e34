"""`cpo status`: real runs with the scripted claude, read from another process."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.runkit import cpo, make_spec, report

pytestmark = pytest.mark.usefixtures("fake_claude")

OK = "@script write {f} x\n@script commit add {f}\n@script marker"


def _wait_for(predicate: object, timeout: float = 30.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def _task_running(root: Path, tid: str) -> bool:
    try:
        return bool(report(root)["tasks"][tid]["status"] == "running")
    except (OSError, ValueError, KeyError):
        return False


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            kids.append(int(entry.name))
    return kids


def _start_run(root: Path, repo: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cpo", "run", str(root)],
        cwd=repo,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def test_no_run_yet_is_one_line_exit_2(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": OK.format(f="a.txt")}])
    proc = cpo("status", str(root), cwd=git_repo)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: no run yet in {root}: start one: cpo run {root}"
    ]
    assert "Traceback" not in proc.stderr


def test_after_a_completed_run(git_repo: Path) -> None:
    root = make_spec(
        git_repo,
        [{"task-001": OK.format(f="a.txt"), "task-002": OK.format(f="b.txt")}],
    )
    assert cpo("run", str(root), cwd=git_repo).returncode == 0
    proc = cpo("status", str(root), cwd=git_repo)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "TS-0042" in out and "completed" in out
    assert "wave 1: completed" in out
    assert "task-001" in out and "task-002" in out
    assert "2/2 tasks completed, 2 commits" in out
    assert f"next: review integration/TS-0042 and merge it: cpo integrate {root}" in out

    data = json.loads(cpo("status", str(root), "--json", cwd=git_repo).stdout)
    assert data["status"] == "completed"
    assert data["tasks"]["task-001"]["commits"] == 1
    assert data["live"]["state"] == "completed"
    assert data["live"]["lock"] is None
    assert data["live"]["elapsed_seconds"] >= 0
    assert data["live"]["next_step"] == data["next_step"]


def test_failed_run_exits_1_and_names_the_reason(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": "@script write a.txt x\n@script commit a"}])
    assert cpo("run", str(root), "--nudges", "0", cwd=git_repo).returncode == 1
    proc = cpo("status", str(root), cwd=git_repo)
    assert proc.returncode == 1
    assert "failed (no_completion_marker)" in proc.stdout
    assert "--retry-failed" in proc.stdout


def test_killed_run_is_shown_stopped_with_resume_hint(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": "@script sleep 60\n@script marker"}])
    run = _start_run(root, git_repo)
    agents: list[int] = []
    try:
        _wait_for(lambda: _task_running(root, "task-001"))
        live = json.loads(cpo("status", str(root), "--json", cwd=git_repo).stdout)["live"]
        assert live["state"] == "running"
        assert live["lock"]["pid"] == run.pid and live["lock"]["alive"] is True
        agents = _children(run.pid)  # the agent has its own process group: clean it up
        run.send_signal(signal.SIGKILL)  # a crash: no chance to write a final report
        run.wait()
    finally:
        for pid in agents:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        if run.poll() is None:
            run.kill()
            run.wait()
    assert report(root)["status"] == "running"
    proc = cpo("status", str(root), cwd=git_repo)
    assert proc.returncode == 1
    shown = " ".join(proc.stdout.split())
    assert "stopped (cpo process gone)" in shown
    assert f"next: continue with: cpo run {root} --resume" in shown
    live = json.loads(cpo("status", str(root), "--json", cwd=git_repo).stdout)["live"]
    assert live["state"] == "stopped"
    assert live["lock"]["alive"] is False


def test_watch_follows_the_run_to_its_end(git_repo: Path) -> None:
    root = make_spec(
        git_repo,
        [
            {"task-001": "@script sleep 2\n" + OK.format(f="a.txt")},
            {"task-002": OK.format(f="b.txt")},
        ],
    )
    run = _start_run(root, git_repo)
    try:
        _wait_for(lambda: (root / "report.json").exists())
        watch = cpo("status", str(root), "--watch", cwd=git_repo, timeout=60)
        assert run.wait(timeout=60) == 0
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert watch.returncode == 0, watch.stderr
    blocks = watch.stdout.split("\n\n")
    assert "running" in blocks[0]
    final = blocks[-1]
    assert "completed" in final and "2/2 tasks completed" in final
    # --watch --json waits for the end too, then prints one document
    data = json.loads(cpo("status", str(root), "--watch", "--json", cwd=git_repo).stdout)
    assert data["live"]["state"] == "completed"


def test_a_stopped_runs_tasks_stop_counting_at_its_last_record() -> None:
    from cpo.commands.status import clock_for, task_elapsed
    from cpo.run.report import Report, TaskRecord

    report = Report(
        cpo_version="0",
        spec_id="TS",
        parallel_dir="/x",
        started_at="2026-01-01T00:00:00+00:00",
        tasks={
            "a": TaskRecord(
                id="a", wave=1, status="running", started_at="2026-01-01T00:00:00+00:00"
            ),
            "b": TaskRecord(
                id="b",
                wave=1,
                status="completed",
                duration_seconds=5.0,
                started_at="2026-01-01T00:00:00+00:00",
                finished_at="2026-01-01T00:00:05+00:00",
            ),
        },
    )
    assert task_elapsed(report, clock_for(report, "stopped"))["a"] == 5.0
    assert task_elapsed(report, clock_for(report, "running"))["a"] > 3600  # real now


def test_a_held_lock_with_an_empty_file_counts_as_live(tmp_path: Path) -> None:
    from cpo.commands.status import lock_state
    from cpo.run.lock import LOCK_FILE, RunLock

    lock = RunLock(tmp_path)
    lock.acquire()
    try:
        (tmp_path / LOCK_FILE).write_text("")  # as a reader may see it while the owner writes
        assert lock_state(tmp_path) == (None, True)
    finally:
        lock.release()
    assert lock_state(tmp_path) == (None, False)
