"""The command backend, run for real through proc.run_streaming."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cpo.agents import get_backend
from cpo.agents.base import AgentEvent, AgentOutcome, AgentRequest
from cpo.agents.command import BACKEND, CommandParser
from cpo.errors import UsageError
from cpo.proc import run_streaming


def _req(tmp_path: Path, command: str | None) -> AgentRequest:
    return AgentRequest(
        task_id="task-001",
        wave=1,
        prompt="the prompt\n",
        worktree=tmp_path,
        parallel_dir=tmp_path,
        command=command,
    )


def _run(req: AgentRequest) -> tuple[list[AgentEvent], AgentOutcome]:
    parser = BACKEND.parser()
    events: list[AgentEvent] = []
    result = run_streaming(
        BACKEND.argv(req),
        cwd=req.worktree,
        env=BACKEND.env(req, {"PATH": "/usr/bin:/bin", "CLAUDECODE": "1"}),
        stdin_text=req.prompt,
        on_stdout=lambda line: events.extend(parser.feed(line)),
    )
    return events, parser.finish(result.returncode, result.stderr_tail)


def test_registry() -> None:
    assert get_backend("command") is BACKEND


def test_argv_and_env(tmp_path: Path) -> None:
    assert BACKEND.argv(_req(tmp_path, "make agent")) == ["/bin/sh", "-c", "make agent"]
    env = BACKEND.env(_req(tmp_path, "x"), {"CLAUDECODE": "1", "A": "b"})
    assert env == {"A": "b"}


def test_missing_command(tmp_path: Path) -> None:
    problems = BACKEND.preflight([_req(tmp_path, None), _req(tmp_path, "ok")], {})
    assert problems == ["--backend command needs --agent-command CMD (no command for: task-001)"]
    assert BACKEND.preflight([_req(tmp_path, "true")], {}) == []
    with pytest.raises(UsageError, match="--agent-command"):
        BACKEND.argv(_req(tmp_path, None))


def test_success_reads_prompt_and_logs_lines(tmp_path: Path) -> None:
    cmd = 'read line; echo "got: $line"; echo; echo "step 2"; touch .claude-task-complete'
    events, out = _run(_req(tmp_path, cmd))
    assert [e.log for e in events] == ["got: the prompt", "step 2"]
    assert events[-1].action == "step 2"
    assert (tmp_path / ".claude-task-complete").exists()
    assert out == AgentOutcome(final_text="step 2", reported_result=False, is_error=False)


def test_failure_has_no_class(tmp_path: Path) -> None:
    events, out = _run(_req(tmp_path, "echo working; echo 'it broke' >&2; exit 3"))
    assert events[-1].action == "working"
    assert out.is_error and out.error_class is None and out.error_text == "it broke"
    assert not out.reported_result


def test_claude_style_result_line_is_parsed(tmp_path: Path) -> None:
    line = json.dumps(
        {
            "type": "result",
            "subtype": "success",
            "is_error": True,
            "result": "Not logged in · Please run /login",
            "session_id": "abc",
            "num_turns": 1,
        }
    )
    _, out = _run(_req(tmp_path, f"echo hello; echo '{line}'; exit 1"))
    assert out.reported_result and out.error_class == "auth" and out.session_id == "abc"


def test_parser_ignores_blank_lines() -> None:
    parser = CommandParser()
    assert parser.feed("   ") == []
    assert parser.feed('{"type": "other", "result": 1}')[0].log == '{"type": "other", "result": 1}'
    assert parser.finish(0, "").final_text == '{"type": "other", "result": 1}'


def test_unsupported_modes_are_said(tmp_path: Path) -> None:
    assert BACKEND.unsupported(_req(tmp_path, "x")) == []
    req = AgentRequest(
        task_id="t",
        wave=1,
        prompt="",
        worktree=tmp_path,
        parallel_dir=tmp_path,
        command="x",
        approval_mode="none",
        sandbox_mode="read-only",
    )
    assert BACKEND.unsupported(req) == [
        "command: approval_mode none is not enforced",
        "command: sandbox_mode read-only is not enforced",
    ]
