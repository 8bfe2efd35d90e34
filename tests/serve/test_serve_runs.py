"""Runs through HTTP with the scripted claude: start, stream, log, cancel, resume, and a
server restart in the middle of a run (the run is a real `cpo run`, not the server's)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git
from tests.runkit import cpo, make_spec, report
from tests.serve.conftest import Server, start_server, wait_for

pytestmark = pytest.mark.usefixtures("fake_claude")


def ok(f: str) -> str:
    return f"@script write {f} x\n@script commit add {f}\n@script marker"


def slow(f: str, seconds: float) -> str:
    return f"@script sleep {seconds}\n{ok(f)}"


def run_of(srv: Server, rid: str) -> dict[str, Any]:
    reply = srv.get(f"/api/v1/runs/{rid}")
    assert reply.status == 200, reply.body
    data: dict[str, Any] = reply.body
    return data


def statuses(event: dict[str, Any]) -> dict[str, str]:
    """Task statuses an event tells: all of them in a snapshot, one in a task event."""
    data = event["data"]
    if event["event"] == "snapshot":
        tasks = (data["report"] or {}).get("tasks", {})
        return {tid: t["status"] for tid, t in tasks.items()}
    return {data["task"]: data["status"]} if event["event"] == "task" else {}


def test_start_stream_cancel_and_resume_through_http(git_repo: Path, tmp_path: Path) -> None:
    root = make_spec(
        git_repo,
        [{"task-001": ok("a.txt"), "task-002": slow("b.txt", 4)}, {"task-003": ok("c.txt")}],
    )
    srv = start_server(tmp_path, [git_repo])
    try:
        started = srv.post("/api/v1/runs", {"dir": "parallel/TS-0042", "max_concurrent": 2})
        assert started.status == 202, started.body
        rid = started.body["id"]
        assert started.body["dir"] == str(root.resolve())
        listed = srv.get("/api/v1/runs").body["runs"]
        assert [r["id"] for r in listed] == [rid]
        assert listed[0]["state"] in ("running", "starting")

        seen: list[dict[str, Any]] = []
        status: dict[str, str] = {}
        for event in srv.events(rid):
            seen.append(event)
            status.update(statuses(event))
            if status.get("task-001") == "completed" and status.get("task-002") == "running":
                break
        assert status["task-002"] == "running"  # (not the end of the stream)
        assert seen[0]["event"] == "snapshot"
        seqs = [e["seq"] for e in seen]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no gap
        lines = [e["data"]["line"] for e in seen if e["event"] == "progress"]
        if statuses(seen[0]).get("task-001") != "completed":  # seen ending through events
            assert "[PROGRESS] wave=1 task=task-001 status=completed commits=1" in lines

        log = srv.get(f"/api/v1/runs/{rid}/tasks/task-001/log?tail=5")
        assert log.status == 200 and 1 <= len(log.body["lines"]) <= 5
        assert srv.get(f"/api/v1/runs/{rid}/tasks/task-999/log").status == 404
        assert srv.post("/api/v1/runs", {"dir": str(root)}).status == 409  # already running

        cancel = srv.post(f"/api/v1/runs/{rid}/cancel")
        assert cancel.status == 202
        wait_for(lambda: run_of(srv, rid)["live"]["state"] == "interrupted")
        data = run_of(srv, rid)
        assert data["tasks"]["task-002"]["status"] == "interrupted"
        assert "--resume" in data["next_step"]
        out = (root / "logs" / "cpo-serve-run.out").read_text()
        assert "interrupted" in out
        assert srv.post(f"/api/v1/runs/{rid}/cancel").status == 409  # nothing to cancel

        resumed = srv.post(f"/api/v1/runs/{rid}/resume")
        assert resumed.status == 202 and resumed.body["id"] == rid
        ends = [e for e in srv.events(rid) if e["event"] == "progress"]
        assert ends[-1]["data"]["line"] == "[PROGRESS] execution status=completed"
        final = run_of(srv, rid)
        assert final["status"] == "completed"
        assert final["tasks"]["task-001"]["attempts"][0]["number"] == 1
        assert len(final["tasks"]["task-001"]["attempts"]) == 1  # not redone
    finally:
        srv.stop()


def test_a_server_restart_loses_no_run(git_repo: Path, tmp_path: Path) -> None:
    gate = tmp_path / "go"  # the task waits for it: still running when the second server looks
    root = make_spec(
        git_repo, [{"task-001": f"@script wait-for {gate}\n{ok('a.txt')}"}], spec_id="TS-7"
    )
    repo2 = tmp_path / "repo2"
    repo2.mkdir()
    git(repo2, "init", "-q", "-b", "main")
    git(repo2, "commit", "-q", "--allow-empty", "-m", "initial")
    # (its own task id: main still names workspaces by task id alone)
    other = make_spec(repo2, [{"task-081": ok("z.txt")}], spec_id="TS-8")
    assert cpo("run", str(other), cwd=repo2).returncode == 0  # from a terminal
    roots = [git_repo, repo2]
    first = start_server(tmp_path, roots, name="first")
    try:
        started = first.post("/api/v1/runs", {"dir": str(root)})
        assert started.status == 202, started.body
        rid = started.body["id"]
    finally:
        first.stop(signal.SIGKILL)
    pid = report(root)["pid"]
    os.kill(pid, 0)  # the run outlived the server

    second = start_server(tmp_path, roots, name="second")
    try:
        runs = {r["id"]: r for r in second.get("/api/v1/runs").body["runs"]}
        assert runs[rid]["state"] == "running" and runs[rid]["pid"] == pid
        gate.touch()
        terminal = next(r for r in runs.values() if r["dir"] == str(other.resolve()))
        assert terminal["status"] == "completed"
        events = list(second.events(rid))
        assert events[-1]["data"] == {"status": "completed", "state": "completed"}
        assert run_of(second, rid)["status"] == "completed"
    finally:
        second.stop()
