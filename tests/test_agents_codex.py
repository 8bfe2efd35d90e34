"""The codex backend against the fake `codex` (tests/fakes/codex.py): argv, events, errors."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from cpo.agents import get_backend
from cpo.agents.base import AgentOutcome, AgentRequest
from cpo.agents.codex import BACKEND, CodexParser
from cpo.proc import ProcResult
from tests.agentkit import request, run_backend
from tests.conftest import FakeAgent, git


def run(req: AgentRequest) -> tuple[ProcResult, AgentOutcome, list[str]]:
    return run_backend(BACKEND, req)


def test_registry_finds_codex() -> None:
    assert get_backend("codex") is BACKEND


def test_success_writes_commits_and_reports(git_repo: Path, fake_codex: FakeAgent) -> None:
    prompt = "Build it.\n@write src/a.py print(1)\n@commit add a\n@marker\n@say All done."
    proc, outcome, logs = run(request(git_repo, prompt, system_prompt="Commit, then mark."))
    assert proc.returncode == 0
    assert not outcome.is_error and outcome.reported_result
    assert outcome.final_text == "All done."
    assert outcome.session_id and len(outcome.session_id) == 36
    assert outcome.input_tokens and outcome.output_tokens
    assert outcome.num_turns == 1
    assert (git_repo / "src" / "a.py").read_text() == "print(1)\n"
    assert (git_repo / ".claude-task-complete").exists()
    assert git(git_repo, "log", "-1", "--format=%s") == "add a"
    assert any(line.startswith("→ Bash: ") for line in logs)
    assert any("Write " in line and "src/a.py" in line for line in logs)
    call = fake_codex.calls()[0]
    assert call["stdin"] == prompt  # the prompt travels on stdin, never on the command line
    assert call["argv"][:3] == ["exec", "--json", "--skip-git-repo-check"]
    assert call["argv"][-1] == "-"
    assert 'developer_instructions="Commit, then mark."' in call["argv"]


@pytest.mark.parametrize(
    ("directive", "error_class"),
    [
        ("@error stream error: boom", "agent_error"),
        ("@auth", "auth"),
        ("@ratelimit", "rate_limited"),
        ("@usagelimit", "usage_limit"),
        ("@crash", "crashed"),
    ],
)
def test_error_classes(
    git_repo: Path, fake_codex: FakeAgent, directive: str, error_class: str
) -> None:
    before = time.time()
    proc, outcome, _ = run(request(git_repo, f"go\n{directive}"))
    assert proc.returncode != 0
    assert outcome.is_error
    assert outcome.error_class == error_class
    assert outcome.error_text
    if error_class == "usage_limit":
        assert outcome.reset_at is not None and outcome.reset_at > before + 3600
    if error_class == "crashed":
        assert "panicked" in outcome.error_text


def test_usage_limit_on_stderr_only_keeps_the_reset_time(
    git_repo: Path, fake_codex: FakeAgent
) -> None:
    """No JSON event, only codex's stderr line: still a usage limit, and when it lifts (so
    cpo can pause until then), as gemini's stderr-only error keeps it."""
    before = time.time()
    proc, outcome, _ = run(request(git_repo, "go\n@usagelimit stderr"))
    assert proc.returncode == 1 and "usage limit" in proc.stderr_tail
    assert outcome.is_error and not outcome.reported_result
    assert outcome.error_class == "usage_limit"
    assert outcome.error_text is not None and "try again in 2 hours" in outcome.error_text
    assert outcome.reset_at is not None and outcome.reset_at > before + 2 * 3600


@pytest.mark.parametrize("after", ["Error: exiting", "    at run (codex-rs/exec/src/lib.rs:88)"])
def test_usage_limit_on_stderr_is_kept_when_more_lines_follow(
    git_repo: Path, fake_codex: FakeAgent, after: str
) -> None:
    """The limit line followed by another stderr line (a trace, "exiting"): the whole
    tail is read, so the task still pauses until the limit lifts instead of failing."""
    before = time.time()
    proc, outcome, _ = run(request(git_repo, f"go\n@usagelimit stderr\n@stderr {after}"))
    assert proc.stderr_tail.strip().splitlines()[-1] == after.strip()
    assert outcome.error_class == "usage_limit"
    assert outcome.error_text is not None and "usage limit" in outcome.error_text
    assert outcome.reset_at is not None and outcome.reset_at > before + 2 * 3600


def test_crash_on_stderr_still_says_its_last_line(git_repo: Path, fake_codex: FakeAgent) -> None:
    prompt = "go\n@crash\n@stderr note: run with RUST_BACKTRACE=1"
    _proc, outcome, _ = run(request(git_repo, prompt))
    assert outcome.error_class == "crashed"
    assert outcome.error_text == "note: run with RUST_BACKTRACE=1"


@pytest.mark.parametrize(
    ("approval", "policy"),
    [("auto", "on-request"), ("none", "never"), ("always", "on-request"), ("default", None)],
)
def test_approval_mode_mapping_is_accepted_by_codex(
    git_repo: Path, fake_codex: FakeAgent, approval: str, policy: str | None
) -> None:
    proc, outcome, _ = run(request(git_repo, "@say ok", approval_mode=approval))
    assert proc.returncode == 0 and not outcome.is_error
    argv = fake_codex.calls()[0]["argv"]
    configs = [argv[i + 1] for i, a in enumerate(argv) if a == "-c"]
    if policy is None:
        assert not any(c.startswith("approval_policy") for c in configs)
    else:
        assert f'approval_policy="{policy}"' in configs
    assert "-a" not in argv and "--ask-for-approval" not in argv


@pytest.mark.parametrize(
    ("sandbox", "policy", "writes"),
    [
        ("default", "workspace-write", True),
        ("workspace", "workspace-write", True),
        ("full", "danger-full-access", True),
        ("read-only", "read-only", False),
    ],
)
def test_sandbox_mode_mapping(
    git_repo: Path, fake_codex: FakeAgent, sandbox: str, policy: str, writes: bool
) -> None:
    run(request(git_repo, "@write x.txt hi", sandbox_mode=sandbox))
    argv = fake_codex.calls()[0]["argv"]
    assert argv[argv.index("--sandbox") + 1] == policy
    assert (git_repo / "x.txt").exists() is writes


def test_codex_exec_rejects_dash_a(git_repo: Path, fake_codex: FakeAgent) -> None:
    proc, outcome, _ = run(request(git_repo, "@say hi", extra_args=("-a", "never")))
    assert proc.returncode == 2
    assert outcome.error_class == "bad_flag"
    assert "unexpected argument '-a' found" in (outcome.error_text or "")


def test_model_flag(git_repo: Path, fake_codex: FakeAgent) -> None:
    run(request(git_repo, "@say hi", model="gpt-5-codex"))
    argv = fake_codex.calls()[0]["argv"]
    assert argv[argv.index("-m") + 1] == "gpt-5-codex"


def test_unsupported_options_are_said(git_repo: Path) -> None:
    notes = BACKEND.unsupported(
        request(git_repo, "x", max_turns=5, agent="a", permission_mode="plan")
    )
    assert any("max_turns 5 is not enforced" in n for n in notes)
    assert any("agent a is ignored" in n for n in notes)
    assert any("permission_mode plan" in n for n in notes)
    assert BACKEND.unsupported(request(git_repo, "x")) == []


def test_preflight_ok_missing_and_old_version(
    git_repo: Path, fake_codex: FakeAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    req = request(git_repo, "x")
    assert BACKEND.preflight([req], dict(os.environ)) == []
    problems = BACKEND.preflight([req], {**os.environ, "PATH": str(git_repo)})
    assert len(problems) == 1 and "not found on PATH" in problems[0]
    monkeypatch.setenv("FAKE_CODEX_OLD", "1")
    problems = BACKEND.preflight([req], dict(os.environ))
    assert len(problems) == 1
    assert "does not know --json" in problems[0] and "upgrade" in problems[0]
    # and the old version really does reject it
    _proc, outcome, _ = run(req)
    assert outcome.error_class == "bad_flag"


def test_preflight_names_an_extra_flag_codex_lacks(git_repo: Path, fake_codex: FakeAgent) -> None:
    req = replace(request(git_repo, "x"), extra_args=("--ask-for-approval", "never"))
    problems = BACKEND.preflight([req], dict(os.environ))
    assert problems and "--ask-for-approval" in problems[0]


def test_parser_tolerates_noise_and_unknown_events() -> None:
    p = CodexParser()
    assert p.feed("") == []
    assert p.feed("plain text")[0].log == "plain text"
    assert p.feed('{"type": "something.new", "x": 1}') == []
    assert p.feed('{"type": "item.completed", "item": 5}') == []
    p.feed('{"type":"thread.started","thread_id":"th"}')
    p.feed('{"type":"turn.started"}')
    p.feed('{"type":"item.completed","item":{"id":"i","type":"agent_message","text":"hi"}}')
    p.feed(
        '{"type":"turn.completed","usage":{"input_tokens":3,"cached_input_tokens":1,"output_tokens":2}}'
    )
    out = p.finish(0, "")
    assert (out.final_text, out.session_id, out.input_tokens, out.output_tokens) == (
        "hi",
        "th",
        3,
        2,
    )
    assert out.extra["cached_input_tokens"] == 1


def test_a_reconnect_error_followed_by_completion_is_not_a_failure() -> None:
    p = CodexParser()
    p.feed('{"type":"error","message":"Reconnecting... 1/5"}')
    p.feed(
        '{"type":"turn.completed","usage":{"input_tokens":1,"cached_input_tokens":0,"output_tokens":1}}'
    )
    assert not p.finish(0, "").is_error


def test_scripted_claude_spelling_drives_the_fake_too(
    git_repo: Path, fake_codex: FakeAgent
) -> None:
    prompt = "@script write b.txt hi\n@script commit add b\n@script marker\n@script text Bye."
    proc, outcome, _ = run(request(git_repo, prompt))
    assert proc.returncode == 0 and outcome.final_text == "Bye."
    assert git(git_repo, "log", "-1", "--format=%s") == "add b"
    proc, outcome, _ = run(request(git_repo, "@script require nope.txt"))
    assert outcome.is_error and "required file missing: nope.txt" in (outcome.error_text or "")
