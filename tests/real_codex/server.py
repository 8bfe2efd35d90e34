"""A scripted OpenAI Responses API, for driving the real `codex exec`.

Codex (0.169.0) speaks only the Responses API (`wire_api = "chat"` is refused: "no
longer supported"), streaming: `POST {base_url}/responses` with `"stream": true`, answered
with SSE events `response.created`, `response.output_item.done` (one per output item) and
`response.completed` (with `usage`), as codex-rs/codex-api/src/sse/responses.rs parses
them. Codex is pointed here by a custom model provider in `$CODEX_HOME/config.toml` (see
conftest.py): `OPENAI_BASE_URL` is not read by this version.

Tool calls the real CLI then executes in its cwd: `shell(cmd)` is the `exec_command`
function (commands run in the turn's cwd), `patch(path, content)` the freeform
`apply_patch` custom tool adding a file (codex reports it as a `file_change` item).
Every main-loop request offers tools; a request without them would be a side request
and gets a canned text without consuming the script (none seen with 0.169.0).
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.realcli_api import Request, ScriptedApi, Turn, send_json, send_sse, tool

# status -> (error.type, error.code, message), shaped like OpenAI's error bodies
ERRORS = {
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided: sk-***"),
    429: ("rate_limit_error", "rate_limit_exceeded", "Rate limit reached. Try again in 0.1s."),
    500: ("server_error", "server_error", "The server had an error"),
    503: ("server_error", "overloaded", "The engine is currently overloaded"),
}


def shell(command: str) -> Turn:
    return tool("exec_command", {"cmd": command})


def patch(path: str, content: str) -> Turn:
    lines = "".join(f"+{line}\n" for line in content.splitlines())
    return tool("apply_patch", f"*** Begin Patch\n*** Add File: {path}\n{lines}*** End Patch\n")


def _error(handler: BaseHTTPRequestHandler, status: int) -> None:
    etype, code, message = ERRORS.get(status, ("server_error", None, "scripted error"))
    error = {"message": message, "type": etype, "code": code, "param": None}
    # A short retry-after keeps the CLI's own back-off quick and deterministic.
    send_json(handler, status, {"error": error}, {"retry-after-ms": "100"})


def _sse(data: dict[str, Any]) -> bytes:
    return f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode()


class ResponsesApi(ScriptedApi):
    """`key`: the API key the CLI must send as `Authorization: Bearer`, else 401."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key

    def respond(
        self, handler: BaseHTTPRequestHandler, method: str, path: str, body: dict[str, Any]
    ) -> None:
        if method != "POST" or not path.split("?", 1)[0].endswith("/responses"):
            self.record(Request(method, path, body or None, None, "404"))
            send_json(handler, 404, {"error": {"message": "not scripted", "type": "not_found"}})
            return
        if handler.headers.get("Authorization") != f"Bearer {self.key}":
            self.record(Request(method, path, body, None, "401"))
            _error(handler, 401)
            return
        if not body.get("tools"):
            self.record(Request(method, path, body, None, "side text"))
            send_sse(handler, self._events(body, Turn("text", text="ok")))
            return
        name, turn = self.next_turn(body)
        if turn is None:
            self.exhausted += 1
            self.record(Request(method, path, body, name, "exhausted"))
            turn = Turn("text", text=f"scripted server: script {name!r} is exhausted")
        else:
            self.record(Request(method, path, body, name, turn.kind))
        if turn.kind == "error":
            _error(handler, turn.status)
        elif turn.kind == "stall":
            self.hold(handler)
        else:
            send_sse(handler, self._events(body, turn))

    def _events(self, body: dict[str, Any], turn: Turn) -> list[bytes]:
        rid = self.new_id("resp")
        model = str(body.get("model") or "gpt-scripted")
        item: dict[str, Any]
        if turn.kind == "tool" and turn.tool_name == "apply_patch":
            item = {
                "type": "custom_tool_call",
                "id": self.new_id("ctc"),
                "call_id": self.new_id("call"),
                "name": "apply_patch",
                "input": turn.tool_input,
                "status": "completed",
            }
        elif turn.kind == "tool":
            item = {
                "type": "function_call",
                "id": self.new_id("fc"),
                "call_id": self.new_id("call"),
                "name": turn.tool_name,
                "arguments": json.dumps(turn.tool_input),
                "status": "completed",
            }
        else:
            item = {
                "type": "message",
                "id": self.new_id("msg"),
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": turn.text, "annotations": []}],
            }
        usage = {
            "input_tokens": 1000,
            "input_tokens_details": {"cached_tokens": 200},
            "output_tokens": 100,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 1100,
        }
        base = {"id": rid, "object": "response", "model": model}
        events = [_sse({"type": "response.created", "response": dict(base, status="in_progress")})]
        events.append(_sse({"type": "response.output_item.added", "output_index": 0, "item": item}))
        if item["type"] == "message":
            events.append(
                _sse(
                    {
                        "type": "response.output_text.delta",
                        "item_id": item["id"],
                        "output_index": 0,
                        "content_index": 0,
                        "delta": turn.text,
                    }
                )
            )
        events.append(_sse({"type": "response.output_item.done", "output_index": 0, "item": item}))
        done = dict(base, status="completed", output=[item], usage=usage)
        events.append(_sse({"type": "response.completed", "response": done}))
        return events
