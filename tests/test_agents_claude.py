"""The claude backend: argv, env, preflight, and the stream-json parser on real captures."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cpo.agents import get_backend
from cpo.agents.base import AgentEvent, AgentOutcome, AgentRequest
from cpo.agents.claude import BACKEND, ClaudeParser
from tests.agentkit import request, run_backend

CAPTURES = Path(__file__).parent / "data" / "claude-cli"


def _req(**kw: object) -> AgentRequest:
    base: dict[str, object] = {
        "task_id": "task-001",
        "wave": 1,
        "prompt": "do it",
        "worktree": Path("/tmp/wt"),
        "parallel_dir": Path("/tmp/pd"),
        "system_prompt": "PROTOCOL",
    }
    base.update(kw)
    return AgentRequest(**base)  # type: ignore[arg-type]


def _replay(name: str, exit_code: int | None) -> tuple[list[AgentEvent], AgentOutcome]:
    parser = ClaudeParser()
    events: list[AgentEvent] = []
    for line in (CAPTURES / name).read_text().splitlines():
        events += parser.feed(line)
    return events, parser.finish(exit_code, "")


# -- captures -----------------------------------------------------------------------
def test_capture_success_write_marker() -> None:
    events, out = _replay("stream-json-success-write-marker.jsonl", 0)
    assert out.reported_result and not out.is_error and out.error_class is None
    assert out.session_id == "e7214a99-a924-415f-b9e9-68159696480f"
    assert out.num_turns == 2
    assert (out.input_tokens, out.output_tokens) == (200, 40)
    assert out.cost_usd == pytest.approx(0.002)
    assert out.final_text == "Done. Task complete."
    assert [e.action for e in events if e.action] == ["Write .claude-task-complete"]
    logs = [e.log for e in events if e.log]
    assert logs[0].startswith("session e7214a99") and "claude-opus-4-8[1m]" in logs[0]
    assert "Done. Task complete." in logs


def test_capture_write_commit_marker() -> None:
    events, out = _replay("stream-json-write-commit-marker.jsonl", 0)
    assert not out.is_error and out.num_turns == 4 and out.cost_usd == pytest.approx(0.025)
    assert (out.input_tokens, out.output_tokens) == (4000, 200)
    assert out.final_text == "All done."
    actions = [e.action for e in events if e.action]
    assert actions[0] == "Write src/a.txt"
    assert actions[1].startswith("Bash: git add -A && git -c user.email=a@b")
    assert len(actions[1]) <= 80
    assert actions[2] == "Write .claude-task-complete"


def test_capture_api_retry_then_success() -> None:
    events, out = _replay("stream-json-api-retry-then-success.jsonl", 0)
    assert not out.is_error and out.error_class is None and out.final_text == "ok"
    assert "API retry 1/10: 529 overloaded" in [e.log for e in events]


def test_capture_overloaded() -> None:
    events, out = _replay("stream-json-overloaded-error.jsonl", 1)
    assert out.reported_result and out.is_error
    assert out.error_class == "overloaded"
    assert out.error_text is not None and out.error_text.startswith("API Error: 529 Overloaded")
    assert "API retry 2/2: 529 overloaded" in [e.log for e in events]


@pytest.mark.parametrize("name", ["stream-json-not-logged-in.jsonl", "json-not-logged-in.json"])
def test_capture_not_logged_in(name: str) -> None:
    _, out = _replay(name, 1)
    assert out.reported_result and out.is_error
    assert out.error_class == "auth"
    assert out.error_text == "Not logged in · Please run /login"
    assert out.cost_usd == 0


def test_capture_max_turns() -> None:
    events, out = _replay("stream-json-error-max-turns.jsonl", 1)
    assert out.is_error and out.error_class == "max_turns"
    assert out.error_text == "Reached maximum number of turns (1)"
    assert out.num_turns == 2
    assert any(
        e.log and e.log.startswith("tool error: Claude requested permissions") for e in events
    )


def test_clean_exit_without_result_is_not_an_error() -> None:
    parser = ClaudeParser()
    parser.feed("plain output")
    out = parser.finish(0, "")
    assert not out.reported_result and not out.is_error and out.error_class is None


def test_synthetic_error_without_result_is_evidence() -> None:
    lines = (CAPTURES / "stream-json-not-logged-in.jsonl").read_text().splitlines()[:-1]
    parser = ClaudeParser()
    for line in lines:
        parser.feed(line)
    out = parser.finish(None, "")
    assert not out.reported_result and out.error_class == "auth"


# -- classification without a result -----------------------------------------------
@pytest.mark.parametrize(
    ("stderr", "klass", "text"),
    [
        ("error: unknown option '--bogus'", "bad_flag", "error: unknown option '--bogus'"),
        (
            "Error: When using --print, --output-format=stream-json requires --verbose",
            "bad_flag",
            "Error: When using --print, --output-format=stream-json requires --verbose",
        ),
        (
            "--dangerously-skip-permissions cannot be used with root/sudo privileges for "
            "security reasons",
            "bad_flag",
            "--dangerously-skip-permissions cannot be used with root/sudo privileges for "
            "security reasons",
        ),
        (
            "--agent 'nope' not found. Available agents: claude, Explore",
            "agent_error",
            "--agent 'nope' not found. Available agents: claude, Explore",
        ),
        ("Traceback...\nTypeError: boom", "crashed", "TypeError: boom"),
        ("", "crashed", "exited with code 1 without a final result"),
    ],
)
def test_no_result_classes(stderr: str, klass: str, text: str) -> None:
    parser = ClaudeParser()
    parser.feed("not json at all")
    out = parser.finish(1, stderr)
    assert not out.reported_result and out.is_error
    assert (out.error_class, out.error_text) == (klass, text)


@pytest.mark.usefixtures("fake_claude")
@pytest.mark.parametrize(
    "said",
    [
        "Error: Unknown option '--bogus'",
        "ERROR: UNKNOWN OPTION '--bogus'",
        "error: option '--model <model>' argument 'x' is invalid. allowed choices are a, b.",
    ],
)
def test_bad_flag_markers_match_case_aside(git_repo: Path, said: str) -> None:
    """The scripted claude refusing its arguments in another case than today's CLI: still a
    bad flag (as codex's and gemini's markers are matched), not a crash to retry."""
    req = request(git_repo, f"@script exit 1 {said}", system_prompt="PROTOCOL")
    proc, out, _ = run_backend(BACKEND, req)
    assert proc.returncode == 1 and said in proc.stderr_tail
    assert not out.reported_result and out.is_error
    assert (out.error_class, out.error_text) == ("bad_flag", said)


def test_usage_limit_result_has_reset_time() -> None:
    parser = ClaudeParser()
    parser.feed(
        json.dumps(
            {
                "type": "result",
                "subtype": "success",
                "is_error": True,
                "result": "Claude AI usage limit reached|1767225600",
                "session_id": "s",
                "num_turns": 1,
            }
        )
    )
    out = parser.finish(1, "")
    assert out.error_class == "usage_limit" and out.reset_at == 1767225600.0


def test_non_json_lines_are_logged_as_is() -> None:
    parser = ClaudeParser()
    assert parser.feed("warning: something odd") == [AgentEvent(log="warning: something odd")]
    assert parser.feed("") == []
    assert parser.feed("[1, 2]") == [AgentEvent(log="[1, 2]")]


# -- fuzz: any input, never an exception ---------------------------------------------
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
_keys = st.sampled_from(
    [
        "type",
        "subtype",
        "message",
        "content",
        "result",
        "is_error",
        "usage",
        "session_id",
        "num_turns",
        "error",
        "api_error_status",
        "model",
        "input",
        "name",
        "text",
        "file_path",
        "command",
        "errors",
        "total_cost_usd",
    ]
)
_shaped = st.recursive(
    st.sampled_from(
        [
            "system",
            "init",
            "api_retry",
            "assistant",
            "user",
            "result",
            "text",
            "tool_use",
            "tool_result",
            "<synthetic>",
            "error_max_turns",
            None,
            1,
            True,
        ]
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=6),
    max_leaves=30,
)


@settings(deadline=None)  # examples: hypothesis default, or the `ci` profile (conftest)
@given(
    st.lists(st.binary(max_size=200) | _json.map(json.dumps) | _shaped.map(json.dumps), max_size=8),
    st.integers(min_value=-15, max_value=255) | st.none(),
    st.text(max_size=200),
)
def test_parser_never_raises(lines: list[object], code: int | None, stderr: str) -> None:
    parser = ClaudeParser()
    for item in lines:
        line = item.decode("utf-8", errors="replace") if isinstance(item, bytes) else str(item)
        for event in parser.feed(line):
            assert isinstance(event, AgentEvent)
    out = parser.finish(code, stderr)
    assert isinstance(out, AgentOutcome)
    if not out.reported_result and code != 0:
        assert out.is_error and out.error_class is not None


# -- argv, env, preflight -----------------------------------------------------------
def test_registry_returns_this_backend() -> None:
    assert get_backend("claude") is BACKEND
    assert BACKEND.name == "claude"


def test_argv_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CPO_CLAUDE_BIN", raising=False)
    argv = BACKEND.argv(_req())
    assert argv == [
        "claude",
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--permission-mode",
        "bypassPermissions",
        "--append-system-prompt",
        "PROTOCOL",
    ]
    assert "do it" not in argv  # the prompt goes on stdin


def test_argv_all_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CPO_CLAUDE_BIN", "/opt/claude")
    argv = BACKEND.argv(
        _req(
            model="opus",
            max_turns=7,
            agent="python-experts:django-expert",
            permission_mode="acceptEdits",
            extra_args=("--foo", "bar"),
        )
    )
    assert argv == [
        "/opt/claude",
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--permission-mode",
        "acceptEdits",
        "--model",
        "opus",
        "--max-turns",
        "7",
        "--agent",
        "python-experts:django-expert",
        "--append-system-prompt",
        "PROTOCOL",
        "--foo",
        "bar",
    ]
    assert BACKEND.executable(_req()) == "/opt/claude"


def test_env_drops_only_claudecode() -> None:
    env = BACKEND.env(_req(), {"CLAUDECODE": "1", "PATH": "/bin", "ANTHROPIC_API_KEY": "k"})
    assert env == {"PATH": "/bin", "ANTHROPIC_API_KEY": "k"}


def _exe(dir_: Path, name: str = "claude") -> Path:
    path = dir_ / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_preflight_missing_executable(tmp_path: Path) -> None:
    problems = BACKEND.preflight([_req(permission_mode="acceptEdits")], {"PATH": str(tmp_path)})
    assert len(problems) == 1
    assert "not found on PATH" in problems[0]
    assert "npm install -g @anthropic-ai/claude-code" in problems[0]
    assert "CPO_CLAUDE_BIN" in problems[0]


def test_preflight_ok_and_cpo_claude_bin(tmp_path: Path) -> None:
    _exe(tmp_path)
    env = {"PATH": str(tmp_path), "IS_SANDBOX": "1"}
    assert BACKEND.preflight([_req()], env) == []
    other = _exe(tmp_path, "my-claude")
    assert (
        BACKEND.preflight(
            [_req()], {"PATH": "/nonexistent", "IS_SANDBOX": "1", "CPO_CLAUDE_BIN": str(other)}
        )
        == []
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="the root rule only applies to root")
def test_preflight_root_without_sandbox(tmp_path: Path) -> None:
    _exe(tmp_path)
    problems = BACKEND.preflight([_req()], {"PATH": str(tmp_path)})
    assert len(problems) == 1
    assert "export IS_SANDBOX=1" in problems[0] and "--permission-mode acceptEdits" in problems[0]
    # acceptEdits, or IS_SANDBOX=1, is fine
    assert BACKEND.preflight([_req(permission_mode="acceptEdits")], {"PATH": str(tmp_path)}) == []
    assert BACKEND.preflight([_req()], {"PATH": str(tmp_path), "IS_SANDBOX": "1"}) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="non-root users may bypass permissions")
def test_preflight_non_root_bypass_is_fine(tmp_path: Path) -> None:
    _exe(tmp_path)
    assert BACKEND.preflight([_req()], {"PATH": str(tmp_path)}) == []


def test_approval_mode_maps_to_permission_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CPO_CLAUDE_BIN", raising=False)
    argv = BACKEND.argv(_req(approval_mode="auto"))
    assert argv[argv.index("--permission-mode") + 1] == "acceptEdits"
    assert BACKEND.unsupported(_req()) == []
    assert any(
        "sandbox_mode read-only" in n for n in BACKEND.unsupported(_req(sandbox_mode="read-only"))
    )


def test_rejected_key_retry_is_fatal_auth_at_once() -> None:
    """The real CLI retries HTTP 401 for minutes; the first such retry is enough for cpo."""
    from cpo.agents.claude import ClaudeParser

    parser = ClaudeParser()
    line = json.dumps(
        {
            "type": "system",
            "subtype": "api_retry",
            "attempt": 1,
            "max_retries": 10,
            "retry_delay_ms": 500,
            "error_status": 401,
            "error": "authentication_failed",
            "session_id": "s",
        }
    )
    events = parser.feed(line)
    assert [e.fatal for e in events] == ["auth"]
    outcome = parser.finish(143, "")
    assert outcome.error_class == "auth" and "401" in (outcome.error_text or "")
    # An overloaded API is not fatal: the CLI's own retries may still succeed.
    other = ClaudeParser()
    assert [e.fatal for e in other.feed(line.replace("401", "529"))] == [None]
