"""The server's edges against a real uvicorn: health, backends, OpenAPI, keys, errors."""

from __future__ import annotations

import http.client
import subprocess
import sys
from pathlib import Path

import pytest

from tests.serve.conftest import Server, start_server

pytestmark = pytest.mark.usefixtures("fake_claude")

HIDE_EXTRA = """
import sys
sys.modules["fastapi"] = None  # as if the extra were not installed
sys.modules["uvicorn"] = None
import importlib.util
real = importlib.util.find_spec
hidden = ("fastapi", "uvicorn")
importlib.util.find_spec = lambda name, *a: None if name in hidden else real(name, *a)
from cpo.cli import main
main(["serve"])
"""


def test_serve_without_the_extra_says_which_pip_command_installs_it(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", HIDE_EXTRA], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "pip install 'cpo-orchestrator[serve]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_public_address_without_a_key_refuses_to_start(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cpo", "serve", "--host", "0.0.0.0", "--port", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={k: v for k, v in __import__("os").environ.items() if k != "CPO_API_KEYS"},
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "refusing to listen on 0.0.0.0 without an API key" in lines[0]


def test_health_backends_and_openapi(server: Server) -> None:
    health = server.get("/health")
    assert health.status == 200
    assert {"status", "version", "uptime", "uptime_millis", "backends"} <= set(health.body)
    assert health.body["status"] == "ok"
    assert {"name": "claude", "available": True} in [
        {k: b[k] for k in ("name", "available")} for b in health.body["backends"]
    ]
    backends = server.get("/api/v1/backends").body["backends"]
    claude = next(b for b in backends if b["name"] == "claude")
    assert claude["available"] and claude["version"].startswith("2.")
    doc = server.get("/openapi.json").body
    assert set(doc["paths"]) >= {
        "/health",
        "/api/v1/backends",
        "/api/v1/parallel",
        "/api/v1/runs",
        "/api/v1/runs/{run_id}",
        "/api/v1/runs/{run_id}/events",
        "/api/v1/runs/{run_id}/tasks/{task}/log",
        "/api/v1/runs/{run_id}/cancel",
        "/api/v1/runs/{run_id}/resume",
    }
    body = doc["paths"]["/api/v1/runs"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"] == "#/components/schemas/RunRequest"
    assert "AdhocTask" in doc["components"]["schemas"]
    assert server.get("/").status == 200  # the dashboard


def test_keys_guard_every_endpoint_but_health(tmp_path: Path, serve_root: Path) -> None:
    srv = start_server(tmp_path, [serve_root], keys="first-key-123456,second-key-654321")
    try:
        assert srv.get("/health", key=None).status == 200
        for path in ("/api/v1/runs", "/api/v1/backends", "/openapi.json", "/api/v1/runs/x"):
            missing = srv.get(path, key=None)
            assert missing.status == 401, path
            assert missing.body == {
                "error": "unauthorized",
                "code": "unauthorized",
                "message": "missing API key",
            }
            assert missing.headers["www-authenticate"] == "Bearer"
        wrong = srv.get("/api/v1/runs", key="first-key-12345X")
        assert (wrong.status, wrong.body["message"]) == (401, "invalid API key")
        assert srv.post("/api/v1/runs", {"dir": "x"}, key=None).status == 401
        assert srv.get("/api/v1/runs", key="second-key-654321").status == 200
        bearer = srv.get(
            "/api/v1/runs", key=None, headers={"Authorization": "Bearer first-key-123456"}
        )
        assert bearer.status == 200
        everything = [srv.get(p).body for p in ("/health", "/api/v1/backends", "/openapi.json")]
        assert "first-key-123456" not in str(everything)
    finally:
        log = srv.stop()
    assert "first-key-123456" not in log and "second-key-654321" not in log


def test_bad_requests_get_clinvk_errors_and_start_nothing(server: Server, serve_root: Path) -> None:
    spec = serve_root / "spec"
    spec.mkdir()
    (spec / "manifest.json").write_text('{"tech_spec_id": "TS-1", "waves": []}')
    outside = serve_root.parent / "outside"
    outside.mkdir()
    (serve_root / "link").symlink_to(outside)

    bad_json = server.post("/api/v1/runs", raw=b'{"dir": ')
    assert bad_json.status == 400 and bad_json.body["error"] == "invalid_request"
    schema = server.post("/api/v1/runs", {"dir": "spec", "max_concurent": 2})
    assert schema.status == 422
    assert schema.body["details"] == {
        "field": "max_concurent",
        "reason": "Extra inputs are not permitted",
    }
    wrong_type = server.post("/api/v1/runs", {"dir": "spec", "max_concurrent": 0})
    assert wrong_type.body["details"]["field"] == "max_concurrent"
    for escape in (str(outside), "link", "../outside", "spec/../../outside"):
        denied = server.post("/api/v1/runs", {"dir": escape})
        assert denied.status == 403, escape
        assert denied.body["error"] == "permission_denied"
    huge = server.post("/api/v1/runs", raw=b'{"dir": "' + b"x" * (2 * 1024 * 1024) + b'"}')
    assert huge.status == 413 and huge.body["error"] == "request_too_large"
    assert server.post("/api/v1/parallel", raw=b"[").status == 400
    no_prompt = server.post("/api/v1/parallel", {"tasks": [{"backend": "claude"}]})
    assert no_prompt.status == 422
    assert no_prompt.body["details"]["field"] == "tasks[0].prompt"
    assert server.get("/api/v1/runs/nope").status == 404
    assert server.get("/api/v1/runs/nope/events").status == 404
    assert server.post("/api/v1/runs/nope/cancel").status == 404
    tail = server.get("/api/v1/runs/nope/tasks/t/log?tail=0")
    assert tail.status == 422 and tail.body["details"]["field"] == "tail"
    assert not (spec / "logs").exists() and not (spec / "report.json").exists()
    assert list(outside.iterdir()) == []


def test_a_chunked_body_over_the_limit_is_413(server: Server) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    chunks = (b"x" * 65536 for _ in range(40))  # 2.5 MB, no Content-Length
    conn.request("POST", "/api/v1/parallel", body=chunks, encode_chunked=True)
    resp = conn.getresponse()
    assert resp.status == 413
