"""A scripted Gemini API (generativelanguage v1beta), for driving the real `gemini` CLI.

Gemini CLI (0.61.0) is pointed here with `GOOGLE_GEMINI_BASE_URL` (honoured for the
`gemini-api-key` auth type, plain http allowed on loopback), the key in `GEMINI_API_KEY`
and `security.auth.selectedType = "gemini-api-key"` in its settings: with the base URL
alone the CLI picks the `gateway` auth type, which its non-interactive auth check then
refuses ("Invalid auth method selected.", exit 41).

Main-loop requests are `POST /v1beta/models/{model}:streamGenerateContent?alt=sse` and
offer `tools`; they consume the script. Side requests (the model router's complexity
classifier, `:generateContent` without tools) get a canned JSON answer.
A request whose `x-goog-api-key` is not the expected key gets Google's answer to a bad
key: 400 INVALID_ARGUMENT "API key not valid".

Tool calls the CLI executes: `write(path, content)` (its `write_file` tool) and
`shell(command)` (`run_shell_command`). `{cwd}` in a tool argument becomes the workspace
directory the CLI announces in its session context.
"""

from __future__ import annotations

import json
import re
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.realcli_api import Request, ScriptedApi, Turn, send_json, send_sse, tool

CWD_RE = re.compile(r"Workspace Directories:\*\*\\n\s*- (\S+?)\\n")
# status -> (google.rpc status, message), shaped like the Gemini API's error bodies
ERRORS = {
    400: ("INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    500: ("INTERNAL", "An internal error has occurred."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
}
CLASSIFIER_ANSWER = '{"complexity_reasoning": "scripted", "complexity_score": 10}'


def write(path: str, content: str) -> Turn:
    return tool("write_file", {"file_path": path, "content": content})


def shell(command: str) -> Turn:
    return tool("run_shell_command", {"command": command, "description": "scripted step"})


def _error(handler: BaseHTTPRequestHandler, status: int) -> None:
    code, message = ERRORS.get(status, ("UNKNOWN", "scripted error"))
    send_json(handler, status, {"error": {"code": status, "message": message, "status": code}})


class GeminiApi(ScriptedApi):
    """`key`: the API key the CLI must send as `x-goog-api-key`."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key

    def respond(
        self, handler: BaseHTTPRequestHandler, method: str, path: str, body: dict[str, Any]
    ) -> None:
        route = path.split("?", 1)[0]
        if method != "POST" or not route.endswith(("GenerateContent", "generateContent")):
            self.record(Request(method, path, body or None, None, "404"))
            send_json(handler, 404, {"error": {"code": 404, "message": "not scripted"}})
            return
        if handler.headers.get("x-goog-api-key") != self.key:
            self.record(Request(method, path, body, None, "bad key"))
            _error(handler, 400)
            return
        stream = route.endswith(":streamGenerateContent")
        if not body.get("tools"):
            self.record(Request(method, path, body, None, "side text"))
            self._answer(handler, stream, self._response(body, Turn("text", CLASSIFIER_ANSWER)))
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
            self._answer(handler, stream, self._response(body, turn))

    @staticmethod
    def _answer(handler: BaseHTTPRequestHandler, stream: bool, data: dict[str, Any]) -> None:
        if stream:
            send_sse(handler, [f"data: {json.dumps(data)}\r\n\r\n".encode()])
        else:
            send_json(handler, 200, data)

    def _response(self, body: dict[str, Any], turn: Turn) -> dict[str, Any]:
        if turn.kind == "tool":
            found = CWD_RE.search(json.dumps(body.get("contents", [])))
            cwd = found.group(1) if found else "."
            args = {
                k: v.replace("{cwd}", cwd) if isinstance(v, str) else v
                for k, v in turn.tool_input.items()
            }
            part: dict[str, Any] = {"functionCall": {"name": turn.tool_name, "args": args}}
        else:
            part = {"text": turn.text}
        return {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [part]},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 1000,
                "candidatesTokenCount": 100,
                "totalTokenCount": 1100,
            },
            "modelVersion": "gemini-scripted",
            "responseId": self.new_id("resp"),
        }
