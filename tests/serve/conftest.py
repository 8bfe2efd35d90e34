"""A real `cpo serve` on a loopback port, and a small HTTP client for it (stdlib only)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class Server:
    proc: subprocess.Popen[str]
    port: int
    log: Path
    key: str | None = None
    roots: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        key: str | None = "default",
    ) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        sent = dict(headers or {})
        chosen = self.key if key == "default" else key
        if chosen:
            sent["X-API-Key"] = chosen
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=sent)
        resp = conn.getresponse()
        text = resp.read().decode()
        conn.close()
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            parsed = text
        return Reply(resp.status, parsed, {k.lower(): v for k, v in resp.getheaders()})

    def get(self, path: str, **kw: Any) -> Reply:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.request("POST", path, body, **kw)

    def events(self, rid: str, *, last_id: int | None = None) -> Iterator[dict[str, Any]]:
        """The run's SSE stream, one dict (seq, event, data) per event, until it ends."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"X-API-Key": self.key} if self.key else {}
        if last_id is not None:
            headers["Last-Event-ID"] = str(last_id)
        conn.request("GET", f"/api/v1/runs/{rid}/events", headers=headers)
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()
        yield from parse_sse(resp)
        conn.close()

    def stop(self, sig: int = signal.SIGINT) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.log.read_text()


def parse_sse(resp: http.client.HTTPResponse) -> Iterator[dict[str, Any]]:
    event: dict[str, Any] = {}
    for raw in resp:
        line = raw.decode().rstrip("\n")
        if not line:
            if "data" in event:
                yield event
            event = {}
        elif line.startswith("id: "):
            event["seq"] = int(line[4:])
        elif line.startswith("event: "):
            event["event"] = line[7:]
        elif line.startswith("data: "):
            event["data"] = json.loads(line[6:])


def start_server(
    tmp_path: Path, roots: list[Path], *, keys: str | None = None, name: str = "server"
) -> Server:
    port = free_port()
    log = tmp_path / f"{name}-{port}.log"
    env = {k: v for k, v in os.environ.items() if k != "CPO_API_KEYS"}
    if keys is not None:
        env["CPO_API_KEYS"] = keys
    args = [a for r in roots for a in ("--root", str(r))]
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cpo", "serve", "--port", str(port), *args],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    server = Server(proc, port, log, key=(keys or "").split(",")[0] or None, roots=roots)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"cpo serve exited {proc.returncode}:\n{log.read_text()}")
        try:
            if server.get("/health").status == 200:
                return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise AssertionError(f"cpo serve did not answer:\n{log.read_text()}")


@pytest.fixture
def serve_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    return root


@pytest.fixture
def server(tmp_path: Path, serve_root: Path) -> Iterator[Server]:
    srv = start_server(tmp_path, [serve_root])
    yield srv
    srv.stop()


def wait_for(predicate: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (OSError, ValueError, KeyError):
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")
