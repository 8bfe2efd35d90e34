"""A scripted loopback model API's plumbing, for the real-CLI suites.

Named scripts of turns, sticky errors, stalls and a request log; each suite's server.py
speaks its CLI's wire format in `ScriptedApi.respond`.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TAG_RE = re.compile(r"\[script:([A-Za-z0-9_.-]+)\]")


@dataclass
class Turn:
    """One scripted answer: `text`, `tool` (name + input), `error` (an HTTP status;
    `sticky` answers every later request the same way) or `stall` (never answer)."""

    kind: str
    text: str = ""
    tool_name: str = ""
    tool_input: Any = None
    status: int = 0
    sticky: bool = False


def text(message: str) -> Turn:
    return Turn("text", text=message)


def tool(name: str, tool_input: Any) -> Turn:
    return Turn("tool", tool_name=name, tool_input=tool_input)


def error(status: int, sticky: bool = False) -> Turn:
    return Turn("error", status=status, sticky=sticky)


def stall() -> Turn:
    return Turn("stall")


@dataclass
class Request:
    method: str
    path: str
    body: dict[str, Any] | None
    script: str | None  # which script answered (None: a side request or not a model call)
    answer: str


class ScriptedApi:
    """Named scripts of turns, consumed one per main-loop request.

    Several CLI processes share one server (cpo runs tasks at once): a request uses the
    script whose tag `[script:NAME]` appears in its body (the tag goes in the task's
    prompt), an untagged one the default script. A script that runs out answers with a
    text saying so and counts it in `exhausted`. Subclasses speak the wire format in
    `respond(handler, method, path, body)`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[Turn]] = {"": deque()}
        self.stopping = threading.Event()
        self._count = 0
        self.requests: list[Request] = []
        self.exhausted = 0
        self.stalled = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ScriptedApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()  # releases stalled handlers
        self._httpd.shutdown()
        self._httpd.server_close()

    def script(self, turns: list[Turn], name: str = "") -> None:
        with self._lock:
            self._scripts[name] = deque(turns)

    def remaining(self, name: str = "") -> int:
        with self._lock:
            return len(self._scripts.get(name, ()))

    @property
    def main_requests(self) -> list[Request]:
        return [r for r in self.requests if r.script is not None]

    def debug_log(self) -> str:
        return "\n".join(
            f"{r.method} {r.path} script={r.script!r} -> {r.answer}" for r in self.requests
        )

    def new_id(self, prefix: str) -> str:
        with self._lock:
            self._count += 1
            return f"{prefix}_{self._count:04d}"

    def next_turn(self, body: dict[str, Any]) -> tuple[str, Turn | None]:
        tag = TAG_RE.search(json.dumps(body))
        name = tag.group(1) if tag else ""
        with self._lock:
            queue = self._scripts.get(name)
            if not queue:
                return name, None
            turn = queue[0]
            if not turn.sticky:
                queue.popleft()
            return name, turn

    def record(self, req: Request) -> None:
        with self._lock:
            self.requests.append(req)

    def respond(
        self, handler: BaseHTTPRequestHandler, method: str, path: str, body: dict[str, Any]
    ) -> None:
        raise NotImplementedError

    def hold(self, handler: BaseHTTPRequestHandler) -> None:
        """A stalled answer: headers never come, until the server stops."""
        with self._lock:
            self.stalled += 1
        self.stopping.wait(600)
        handler.close_connection = True


def send_json(
    handler: BaseHTTPRequestHandler,
    status: int,
    payload: dict[str, Any],
    headers: Mapping[str, str] | None = None,
) -> None:
    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(data)


def send_sse(handler: BaseHTTPRequestHandler, events: Sequence[bytes]) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Cache-Control", "no-cache")
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.close_connection = True
    for event in events:
        handler.wfile.write(event)
        handler.wfile.flush()


def _handler(api: ScriptedApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
            pass

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                parsed = json.loads(raw) if raw else {}
            except ValueError:
                return {}
            return parsed if isinstance(parsed, dict) else {}

        def do_GET(self) -> None:
            api.respond(self, "GET", self.path, {})

        def do_POST(self) -> None:
            api.respond(self, "POST", self.path, self._body())

    return Handler
