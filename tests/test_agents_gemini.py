"""The gemini backend against the fake `gemini` (tests/fakes/gemini.py): argv, events, errors."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from cpo.agents import get_backend
from cpo.agents.base import AgentOutcome, AgentRequest
from cpo.agents.gemini import BACKEND, DEFAULT_TAIL_PROMPT, GeminiParser
from cpo.proc import ProcResult
from tests.agentkit import request, run_backend
from tests.conftest import FakeAgent, git


def run(
    req: AgentRequest, env: dict[str, str] | None = None
) -> tuple[ProcResult, AgentOutcome, list[str]]:
    return run_backend(BACKEND, req, env)


def test_registry_finds_gemini() -> None:
    assert get_backend("gemini") is BACKEND


def test_success_writes_commits_and_reports(git_repo: Path, fake_gemini: FakeAgent) -> None:
    prompt = "Build it.\n@write src/a.py print(1)\n@commit add a\n@marker\n@say All done here."
    proc, outcome, logs = run(request(git_repo, prompt, system_prompt="Commit, then mark."))
    assert proc.returncode == 0
    assert not outcome.is_error and outcome.reported_result
    assert outcome.final_text == "All done here."  # joined from the delta chunks
    assert outcome.session_id and len(outcome.session_id) == 36
    assert outcome.input_tokens and outcome.output_tokens
    assert outcome.extra["tool_calls"] == 3
    assert (git_repo / "src" / "a.py").read_text() == "print(1)\n"
    assert git(git_repo, "log", "-1", "--format=%s") == "add a"
    assert any(line.startswith("→ run_shell_command: git add") for line in logs)
    call = fake_gemini.calls()[0]
    # stdin carries the prompt; gemini appends the -p text (cpo's protocol) after it
    assert call["stdin"] == f"{prompt}\n\nCommit, then mark."
    argv = call["argv"]
    assert argv[argv.index("--output-format") + 1] == "stream-json"
    assert argv[argv.index("-p") + 1] == "Commit, then mark."
    assert call["env"]["GEMINI_CLI_TRUST_WORKSPACE"] == "true"


def test_without_system_prompt_a_neutral_tail(git_repo: Path, fake_gemini: FakeAgent) -> None:
    run(request(git_repo, "@say hi"))
    argv = fake_gemini.calls()[0]["argv"]
    assert argv[argv.index("-p") + 1] == DEFAULT_TAIL_PROMPT


@pytest.mark.parametrize(
    ("directive", "error_class", "code"),
    [
        ("@error [API Error: got status: INTERNAL]", "agent_error", 1),
        ("@auth", "auth", 41),
        ("@ratelimit", "rate_limited", 173),
        ("@maxturns", "max_turns", 53),
        ("@crash", "crashed", 134),
    ],
)
def test_error_classes_and_exit_codes(
    git_repo: Path, fake_gemini: FakeAgent, directive: str, error_class: str, code: int
) -> None:
    proc, outcome, _ = run(request(git_repo, f"go\n{directive}"))
    assert proc.returncode == code
    assert outcome.is_error
    assert outcome.error_class == error_class
    assert outcome.error_text


def test_usage_limit_on_stderr_is_kept_when_more_lines_follow(
    git_repo: Path, fake_gemini: FakeAgent
) -> None:
    """gemini's quota notice on stderr, then another line: the whole tail is read, so the
    class is kept (the last line alone says nothing)."""
    before = time.time()
    proc, outcome, _ = run(request(git_repo, "go\n@usagelimit\n@stderr Exiting."))
    assert proc.stderr_tail.strip().splitlines()[-1] == "Exiting."
    assert outcome.is_error and not outcome.reported_result
    assert outcome.error_class == "usage_limit"
    assert outcome.error_text == "Usage limit reached for all Pro models."
    # "Access resets at 4:05 PM." on the next line: two hours from now, seconds cut
    assert outcome.reset_at is not None and outcome.reset_at > before + 2 * 3600 - 60


def test_untrusted_folder_exit_55_is_explained(git_repo: Path, fake_gemini: FakeAgent) -> None:
    # a user who set the variable to false keeps it; gemini then refuses the folder
    env = {**os.environ, "GEMINI_CLI_TRUST_WORKSPACE": "false"}
    proc, outcome, _ = run(request(git_repo, "@say hi"), env)
    assert proc.returncode == 55
    assert outcome.error_class == "agent_error"
    assert "untrusted folder" in (outcome.error_text or "")
    assert "GEMINI_CLI_TRUST_WORKSPACE=true" in (outcome.error_text or "")


@pytest.mark.parametrize(
    ("approval", "mode", "writes", "commits"),
    [
        ("default", "yolo", True, True),
        ("none", "yolo", True, True),
        ("auto", "auto_edit", True, False),
        ("always", "default", False, False),
    ],
)
def test_approval_mode_mapping(
    git_repo: Path, fake_gemini: FakeAgent, approval: str, mode: str, writes: bool, commits: bool
) -> None:
    proc, outcome, logs = run(
        request(git_repo, "@write x.txt hi\n@commit c", approval_mode=approval)
    )
    assert proc.returncode == 0 and not outcome.is_error
    argv = fake_gemini.calls()[0]["argv"]
    assert argv[argv.index("--approval-mode") + 1] == mode
    assert (git_repo / "x.txt").exists() is writes
    assert (git(git_repo, "log", "-1", "--format=%s") == "c") is commits
    if not writes:
        assert any("tool error:" in line for line in logs)


@pytest.mark.parametrize(
    ("sandbox", "expected"),
    [
        ("read-only", ["--approval-mode", "plan"]),
        ("workspace", ["--sandbox", "--skip-trust"]),
        ("full", ["--sandbox=false"]),
    ],
)
def test_sandbox_mode_mapping(
    git_repo: Path, fake_gemini: FakeAgent, sandbox: str, expected: list[str]
) -> None:
    proc, outcome, _ = run(request(git_repo, "@write x.txt hi", sandbox_mode=sandbox))
    assert proc.returncode == 0, outcome.error_text
    argv = fake_gemini.calls()[0]["argv"]
    joined = " ".join(argv)
    assert " ".join(expected) in joined
    assert (git_repo / "x.txt").exists() is (sandbox != "read-only")


def test_read_only_with_an_approval_mode_is_said(git_repo: Path) -> None:
    notes = BACKEND.unsupported(
        request(git_repo, "x", sandbox_mode="read-only", approval_mode="none")
    )
    assert any("replaces approval_mode none" in n for n in notes)
    notes = BACKEND.unsupported(request(git_repo, "x", max_turns=3, agent="a"))
    assert any("max_turns 3 is not enforced" in n for n in notes)
    assert any("agent a is ignored" in n for n in notes)
    assert BACKEND.unsupported(request(git_repo, "x")) == []


def test_unknown_flag_is_rejected_like_yargs(git_repo: Path, fake_gemini: FakeAgent) -> None:
    proc, outcome, _ = run(request(git_repo, "@say hi", extra_args=("--max-turns", "3")))
    assert proc.returncode == 1
    assert outcome.error_class == "bad_flag"
    assert "Unknown arguments: max-turns, maxTurns" in (outcome.error_text or "")


def test_preflight_ok_missing_and_old_version(
    git_repo: Path, fake_gemini: FakeAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    req = request(git_repo, "x")
    assert BACKEND.preflight([req], dict(os.environ)) == []
    problems = BACKEND.preflight([req], {**os.environ, "PATH": str(git_repo)})
    assert len(problems) == 1 and "not found on PATH" in problems[0]
    monkeypatch.setenv("FAKE_GEMINI_OLD", "1")
    problems = BACKEND.preflight([req], dict(os.environ))
    assert len(problems) == 1 and "does not know stream-json" in problems[0]
    sandboxed = request(git_repo, "x", sandbox_mode="workspace")
    read_only = request(git_repo, "x", sandbox_mode="read-only")
    problem = BACKEND.preflight([sandboxed, read_only], dict(os.environ))[0]
    assert "--skip-trust" in problem and "plan" in problem


def test_model_flag(git_repo: Path, fake_gemini: FakeAgent) -> None:
    run(request(git_repo, "@say hi", model="gemini-2.5-flash"))
    argv = fake_gemini.calls()[0]["argv"]
    assert argv[argv.index("-m") + 1] == "gemini-2.5-flash"


def test_parser_final_text_is_after_the_last_tool() -> None:
    p = GeminiParser()
    p.feed('{"type":"init","timestamp":"t","session_id":"s","model":"m"}')
    p.feed('{"type":"message","role":"assistant","content":"Let me look","delta":true}')
    p.feed(
        '{"type":"tool_use","tool_name":"read_file","tool_id":"1","parameters":{"file_path":"a"}}'
    )
    p.feed('{"type":"tool_result","tool_id":"1","status":"success","output":"x"}')
    p.feed('{"type":"message","role":"assistant","content":"Fine ","delta":true}')
    p.feed('{"type":"message","role":"assistant","content":"now.","delta":true}')
    p.feed('{"type":"result","status":"success","stats":{"input_tokens":5,"output_tokens":6}}')
    out = p.finish(0, "")
    assert (out.final_text, out.session_id, out.input_tokens, out.output_tokens) == (
        "Fine now.",
        "s",
        5,
        6,
    )
    assert p.feed("not json")[0].log == "not json"
    assert p.feed('{"type":"future_event"}') == []
