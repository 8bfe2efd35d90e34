"""A scripted stand-in for the Anthropic Messages API, for driving the real `claude` CLI.

The real CLI is pointed at this server with `ANTHROPIC_BASE_URL`; each test scripts the
"model's" turns, and the CLI then really executes the tool calls (Write, Bash) in its cwd.

Scripts. A script is a queue of turns, consumed one per *main-loop* request:

    server.script([write("a.txt", "hi"), bash("git commit ..."), text("done")])

Several CLI processes can share one server (cpo runs tasks concurrently): a script may be
given a name, and a request uses the script whose tag ``[script:NAME]`` appears anywhere in
its messages (the tag goes in the task's prompt). Untagged requests use the default script.

Side requests. Besides its agent loop, the CLI asks the model for small things of its own
(a session title, a quota probe, topic detection...). Those must not consume the script.
A request is a main-loop request when it offers tools (``"tools"`` non-empty): the agent
loop always sends the tool list, the side requests observed with 2.1.197 never do. Side
requests get a short canned text answer and are recorded in ``side_requests``.

Every string in a tool call's input may contain ``{cwd}``: it is replaced by the working
directory the CLI announces in its system prompt ("Primary working directory: ...").

Turns: ``text``, ``write`` / ``bash`` / ``tool_use`` (one tool call), ``error`` (an HTTP
status with an Anthropic error body; ``sticky=True`` answers every later request the
same way instead of being consumed) and ``stall`` (accept the request, never answer, until
the server stops). A script that runs out answers with a text saying so and counts it in
``exhausted``, so a test can tell a short script from a CLI that asked too much.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TAG_RE = re.compile(r"\[script:([A-Za-z0-9_.-]+)\]")
# The CLI tells the model its cwd in the system prompt; tool inputs may say ``{cwd}`` and
# get it substituted, so a script need not know the worktree path cpo will choose.
CWD_RE = re.compile(r"Primary working directory: (\S+)")

ERROR_TYPES = {
    400: ("invalid_request_error", "scripted bad request"),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "scripted permission error"),
    429: ("rate_limit_error", "scripted rate limit"),
    500: ("api_error", "scripted internal error"),
    529: ("overloaded_error", "Overloaded"),
}


@dataclass
class Turn:
    kind: str  # text | tool | error | stall
    text: str = ""
    tool_name: str = ""
    tool_input: dict[str, Any] = field(default_factory=dict)
    status: int = 0
    sticky: bool = False


def text(message: str) -> Turn:
    return Turn("text", text=message)


def tool_use(name: str, tool_input: dict[str, Any]) -> Turn:
    return Turn("tool", tool_name=name, tool_input=tool_input)


def write(file_path: str, content: str) -> Turn:
    """A Write tool call; the real Write tool wants an absolute path: use ``{cwd}/name``."""
    return tool_use("Write", {"file_path": file_path, "content": content})


def bash(command: str) -> Turn:
    return tool_use("Bash", {"command": command, "description": "scripted step"})


def error(status: int, sticky: bool = False) -> Turn:
    return Turn("error", status=status, sticky=sticky)


def stall() -> Turn:
    return Turn("stall")


@dataclass
class Request:
    method: str
    path: str
    body: dict[str, Any] | None
    script: str | None  # which script answered (None: side request or not a message call)
    answer: str  # what we answered, for debugging


class ScriptedServer:
    """Run with `start()`; `url` is the ANTHROPIC_BASE_URL to give the CLI."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[Turn]] = {"": deque()}
        self._stop = threading.Event()
        self._ids = itertools.count()
        self.requests: list[Request] = []
        self.exhausted = 0
        self.stalled = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        # A short poll keeps stop() quick (serve_forever checks for shutdown that often).
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ScriptedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # releases stalled handlers
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

    @property
    def side_requests(self) -> list[Request]:
        return [r for r in self.requests if r.script is None and r.path.startswith("/v1/messages")]

    def debug_log(self) -> str:
        """One line per request, for assertion messages."""
        lines = []
        for r in self.requests:
            model = (r.body or {}).get("model", "")
            lines.append(f"{r.method} {r.path} model={model} script={r.script!r} -> {r.answer}")
        return "\n".join(lines)

    # -- called by the handler ------------------------------------------------------
    def _next_turn(self, body: dict[str, Any]) -> tuple[str, Turn | None]:
        tag = TAG_RE.search(json.dumps(body.get("messages", [])))
        name = tag.group(1) if tag else ""
        with self._lock:
            queue = self._scripts.get(name)
            if not queue:
                return name, None
            turn = queue[0]
            if not turn.sticky:
                queue.popleft()
            return name, turn

    def _record(self, req: Request) -> None:
        with self._lock:
            self.requests.append(req)

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):04d}"


def _system_text(body: dict[str, Any]) -> str:
    system = body.get("system") or ""
    if isinstance(system, list):
        return "\n".join(str(b.get("text", "")) for b in system if isinstance(b, dict))
    return str(system)


def is_main_loop(body: dict[str, Any]) -> bool:
    return bool(body.get("tools"))


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _handler_for(server: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
            pass

        # -- plumbing ---------------------------------------------------------------
        def _read_body(self) -> dict[str, Any] | None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                return None
            return parsed if isinstance(parsed, dict) else None

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("request-id", server._new_id("req"))
            if status == 529 or status == 429:
                # Keep the CLI's own retry back-off short and deterministic.
                self.send_header("retry-after", "0")
            self.end_headers()
            self.wfile.write(data)

        def do_HEAD(self) -> None:
            server._record(Request("HEAD", self.path, None, None, "200"))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            if self.path.startswith("/v1/models"):
                server._record(Request("GET", self.path, None, None, "models"))
                self._json(200, {"data": [], "has_more": False, "first_id": None, "last_id": None})
                return
            server._record(Request("GET", self.path, None, None, "404"))
            self._json(
                404,
                {"type": "error", "error": {"type": "not_found_error", "message": "not scripted"}},
            )

        def do_POST(self) -> None:
            body = self._read_body() or {}
            path = self.path.split("?", 1)[0]
            if path == "/v1/messages/count_tokens":
                server._record(Request("POST", self.path, body, None, "count_tokens"))
                self._json(200, {"input_tokens": 1000})
                return
            if path != "/v1/messages":
                server._record(Request("POST", self.path, body, None, "404"))
                self._json(
                    404,
                    {
                        "type": "error",
                        "error": {"type": "not_found_error", "message": "not scripted"},
                    },
                )
                return
            if not is_main_loop(body):
                server._record(Request("POST", self.path, body, None, "side text"))
                self._message(body, text("ok"))
                return
            name, turn = server._next_turn(body)
            if turn is None:
                server.exhausted += 1
                server._record(Request("POST", self.path, body, name, "exhausted"))
                self._message(body, text(f"scripted server: script {name!r} is exhausted"))
                return
            server._record(Request("POST", self.path, body, name, turn.kind))
            if turn.kind == "error":
                etype, msg = ERROR_TYPES.get(turn.status, ("api_error", "scripted error"))
                self._json(turn.status, {"type": "error", "error": {"type": etype, "message": msg}})
            elif turn.kind == "stall":
                server.stalled += 1
                server._stop.wait(600)
                self.close_connection = True
            else:
                self._message(body, turn)

        # -- a model answer -----------------------------------------------------------
        def _message(self, body: dict[str, Any], turn: Turn) -> None:
            model = str(body.get("model") or "claude-scripted")
            if turn.kind == "tool":
                found = CWD_RE.search(_system_text(body))
                cwd = found.group(1) if found else "."
                tool_input = {
                    k: v.replace("{cwd}", cwd) if isinstance(v, str) else v
                    for k, v in turn.tool_input.items()
                }
                block: dict[str, Any] = {
                    "type": "tool_use",
                    "id": server._new_id("toolu"),
                    "name": turn.tool_name,
                    "input": tool_input,
                }
                stop_reason = "tool_use"
            else:
                block = {"type": "text", "text": turn.text}
                stop_reason = "end_turn"
            usage = {
                "input_tokens": 1000,
                "output_tokens": 100,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            }
            msg = {
                "id": server._new_id("msg"),
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [block],
                "stop_reason": stop_reason,
                "stop_sequence": None,
                "usage": usage,
            }
            if not body.get("stream"):
                self._json(200, msg)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.send_header("request-id", server._new_id("req"))
            self.end_headers()
            self.close_connection = True
            start = dict(msg, content=[], stop_reason=None, usage=dict(usage, output_tokens=1))
            events = [_sse("message_start", {"type": "message_start", "message": start})]
            if block["type"] == "tool_use":
                events.append(
                    _sse(
                        "content_block_start",
                        {
                            "type": "content_block_start",
                            "index": 0,
                            "content_block": dict(block, input={}),
                        },
                    )
                )
                raw = json.dumps(block["input"])
                mid = len(raw) // 2  # two deltas: the CLI must join partial JSON
                for part in (raw[:mid], raw[mid:]):
                    events.append(
                        _sse(
                            "content_block_delta",
                            {
                                "type": "content_block_delta",
                                "index": 0,
                                "delta": {"type": "input_json_delta", "partial_json": part},
                            },
                        )
                    )
            else:
                events.append(
                    _sse(
                        "content_block_start",
                        {
                            "type": "content_block_start",
                            "index": 0,
                            "content_block": {"type": "text", "text": ""},
                        },
                    )
                )
                events.append(
                    _sse(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": 0,
                            "delta": {"type": "text_delta", "text": block["text"]},
                        },
                    )
                )
            events.append(_sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
            events.append(
                _sse(
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                        "usage": {"output_tokens": usage["output_tokens"]},
                    },
                )
            )
            events.append(_sse("message_stop", {"type": "message_stop"}))
            for ev in events:
                self.wfile.write(ev)
                self.wfile.flush()

    return Handler


if __name__ == "__main__":  # manual probing: python tests/real_claude/server.py
    srv = ScriptedServer().start()
    srv.script([write("probe.txt", "hello\n"), text("probe done")])
    print(srv.url, flush=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        print(srv.debug_log())
        srv.stop()
