"""The scripted Messages API server itself (no CLI needed): scripts, side requests, SSE."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from .server import ScriptedServer, error, text, write

pytestmark = pytest.mark.real_claude

TOOLS = [{"name": "Write", "input_schema": {"type": "object"}}]
SYSTEM = [{"type": "text", "text": "env\n - Primary working directory: /w/t1\n - Platform"}]


def post(server: ScriptedServer, body: dict[str, Any]) -> tuple[int, str]:
    req = urllib.request.Request(
        f"{server.url}/v1/messages?beta=true",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def sse_events(raw: str) -> list[dict[str, Any]]:
    return [
        json.loads(line[len("data: ") :]) for line in raw.splitlines() if line.startswith("data: ")
    ]


def test_side_requests_do_not_consume_the_script() -> None:
    server = ScriptedServer().start()
    try:
        server.script([text("main answer")])
        status, raw = post(
            server,
            {
                "model": "claude-haiku",
                "max_tokens": 50,
                "messages": [{"role": "user", "content": "title?"}],
            },
        )
        assert status == 200 and json.loads(raw)["content"][0]["text"] == "ok"
        assert server.remaining() == 1 and len(server.side_requests) == 1
        status, raw = post(
            server,
            {
                "model": "m",
                "tools": TOOLS,
                "max_tokens": 10,
                "messages": [{"role": "user", "content": "go"}],
            },
        )
        assert json.loads(raw)["content"][0]["text"] == "main answer"
        assert server.remaining() == 0
        status, raw = post(
            server,
            {"model": "m", "tools": TOOLS, "messages": [{"role": "user", "content": "more"}]},
        )
        assert "exhausted" in json.loads(raw)["content"][0]["text"]
        assert server.exhausted == 1
    finally:
        server.stop()


def test_streamed_tool_call_with_cwd_and_named_scripts() -> None:
    server = ScriptedServer().start()
    try:
        server.script([write("{cwd}/a.txt", "hi")], name="t1")
        server.script([error(529, sticky=True)])
        body = {
            "model": "m",
            "tools": TOOLS,
            "stream": True,
            "system": SYSTEM,
            "messages": [{"role": "user", "content": "[script:t1] go"}],
        }
        status, raw = post(server, body)
        assert status == 200
        events = sse_events(raw)
        assert [e["type"] for e in events] == [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
        partial = "".join(
            e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta"
        )
        assert json.loads(partial) == {"file_path": "/w/t1/a.txt", "content": "hi"}
        assert events[-2]["delta"]["stop_reason"] == "tool_use"
        # The untagged request gets the default script: a sticky 529, never used up.
        for _ in range(2):
            status, raw = post(server, dict(body, messages=[{"role": "user", "content": "x"}]))
            assert status == 529
            assert json.loads(raw)["error"]["type"] == "overloaded_error"
        assert server.remaining() == 1
    finally:
        server.stop()
