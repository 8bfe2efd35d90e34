"""POST /api/v1/parallel: `cpo parallel --json` over HTTP; a disconnect stops the agents."""

from __future__ import annotations

import http.client
import json
import os
import time
from pathlib import Path

import pytest

from tests.serve.conftest import Server, wait_for

pytestmark = pytest.mark.usefixtures("fake_claude")


def test_parallel_answers_like_cpo_parallel_json(server: Server, serve_root: Path) -> None:
    (serve_root / "w").mkdir()
    doc = {
        "tasks": [
            {"prompt": "@script text hello", "id": "a", "workdir": "w"},
            {"backend": "claude", "prompt": "@script error boom", "name": "second"},
        ]
    }
    reply = server.post("/api/v1/parallel", doc)
    assert reply.status == 200, reply.body
    data = reply.body
    assert (data["total_tasks"], data["completed"], data["failed"]) == (2, 1, 1)
    assert isinstance(data["total_duration_ms"], int)
    first, second = data["results"]
    assert (first["task_id"], first["backend"], first["exit_code"]) == ("a", "claude", 0)
    assert first["output"] == first["content"] and "duration_ms" in first
    assert second["task_name"] == "second" and second["error"]


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_a_client_that_disconnects_stops_its_agents(server: Server, serve_root: Path) -> None:
    doc = {"tasks": [{"prompt": "@script spawn-child 300\n@script hang"}]}
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("POST", "/api/v1/parallel", body=json.dumps(doc).encode())
    pid_file = serve_root / ".child-pid"
    wait_for(pid_file.exists, timeout=30)
    child = int(pid_file.read_text())
    assert alive(child)
    conn.sock.close()  # type: ignore[union-attr]  # the client goes away mid-request
    conn.close()
    wait_for(lambda: not alive(child), timeout=30)
    time.sleep(0.2)
    assert server.get("/health").status == 200  # the server itself goes on
    assert os.path.exists(pid_file)
