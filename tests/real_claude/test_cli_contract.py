"""Contract tests: the real Claude Code CLI accepts what cpo passes and says what cpo reads.

Each test runs the real `claude` against the scripted Messages API server, then checks the
CLI's behaviour and feeds its real output to cpo's own parser (`cpo.agents.claude`), so a
renamed flag, a moved field or a new guard in a future CLI shows up here first.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from conftest import git

from cpo.agents.base import AgentOutcome, AgentRequest
from cpo.agents.claude import BACKEND, ClaudeParser

from .conftest import (
    IS_ROOT,
    CliRun,
    base_argv,
    cli_env,
    group_members,
    kill_group,
    locate_cli,
    run_cli,
)
from .server import ScriptedServer, bash, error, stall, text, write

pytestmark = pytest.mark.real_claude

MARKER = ".claude-task-complete"


def outcome_of(run: CliRun) -> AgentOutcome:
    """What cpo's claude parser makes of this real run."""
    parser = ClaudeParser()
    for line in run.stdout.splitlines():
        parser.feed(line)
    return parser.finish(run.returncode, run.stderr)


def messages_text(server: ScriptedServer) -> str:
    return "\n".join(json.dumps(r.body) for r in server.main_requests)


# -- the version ------------------------------------------------------------------------
def test_version_reported_in_init_event(
    claude_bin: str, api: ScriptedServer, git_repo: Path
) -> None:
    api.script([text("hi")])
    run = run_cli(base_argv(claude_bin), cwd=git_repo, env=cli_env(api))
    _, version = locate_cli()
    print(f"claude CLI version: {version}")
    assert run.returncode == 0, run.describe()
    assert version.startswith(run.init["claude_code_version"])


# -- every flag cpo passes (README, claude) -----------------------------------------------------
def test_print_mode_reads_the_prompt_from_stdin(
    claude_bin: str, api: ScriptedServer, git_repo: Path
) -> None:
    api.script([text("answered")])
    run = run_cli(
        base_argv(claude_bin), cwd=git_repo, env=cli_env(api), prompt="PROMPT-ON-STDIN-7f3a"
    )
    assert run.returncode == 0, run.describe()
    assert "PROMPT-ON-STDIN-7f3a" in messages_text(api)
    assert run.result["result"] == "answered"


def test_stream_json_with_verbose_is_one_json_object_per_line(
    claude_bin: str, api: ScriptedServer, git_repo: Path
) -> None:
    api.script([text("hi")])
    run = run_cli(base_argv(claude_bin), cwd=git_repo, env=cli_env(api))
    assert run.returncode == 0, run.describe()
    lines = [ln for ln in run.stdout.splitlines() if ln.strip()]
    assert len(run.events) == len(lines), "every stdout line must be a JSON object"
    assert run.events[0]["type"] == "system" and run.events[0]["subtype"] == "init"
    assert run.events[-1]["type"] == "result"


def test_stream_json_without_verbose_is_refused(
    claude_bin: str, api: ScriptedServer, git_repo: Path
) -> None:
    argv = [claude_bin, "-p", "--output-format", "stream-json"]
    run = run_cli(argv, cwd=git_repo, env=cli_env(api))
    assert run.returncode == 1
    assert "--output-format=stream-json requires --verbose" in run.stderr
    assert outcome_of(run).error_class == "bad_flag"


# What each mode lets a Write tool call do in print mode (nobody is there to approve).
MODES = {"bypassPermissions": True, "acceptEdits": True, "default": False, "plan": False}


@pytest.mark.parametrize("mode", list(MODES))
def test_permission_mode_is_accepted(
    claude_bin: str, api: ScriptedServer, git_repo: Path, mode: str
) -> None:
    api.script([write("{cwd}/made.txt", "x\n"), text("done")])
    run = run_cli(base_argv(claude_bin, mode), cwd=git_repo, env=cli_env(api))
    assert run.returncode == 0, run.describe()
    assert run.init["permissionMode"] == mode
    assert (git_repo / "made.txt").exists() is MODES[mode], run.describe()
    if not MODES[mode]:
        assert run.result["permission_denials"][0]["tool_name"] == "Write"


def test_accept_edits_denies_bash_so_the_agent_cannot_commit(
    claude_bin: str, api: ScriptedServer, git_repo: Path
) -> None:
    """In print mode nobody approves: acceptEdits allows Write but not Bash (`git commit`),
    so cpo must commit what such an agent leaves behind."""
    api.script(
        [write("{cwd}/a.txt", "a\n"), bash("git add -A && git commit -q -m 'add a'"), text("done")]
    )
    run = run_cli(base_argv(claude_bin, "acceptEdits"), cwd=git_repo, env=cli_env(api))
    assert run.returncode == 0, run.describe()
    assert (git_repo / "a.txt").exists()
    assert git(git_repo, "log", "-1", "--format=%s") == "initial"
    assert [d["tool_name"] for d in run.result["permission_denials"]] == ["Bash"]


def test_bypass_permissions_as_root_needs_is_sandbox(
    claude_bin: str, api: ScriptedServer, git_repo: Path
) -> None:
    if not IS_ROOT:
        pytest.skip("the CLI's root guard only applies when the tests run as root")
    env = cli_env(api)
    env.pop("IS_SANDBOX", None)
    run = run_cli(base_argv(claude_bin), cwd=git_repo, env=env)
    assert run.returncode == 1
    assert "cannot be used with root/sudo privileges" in run.stderr, run.describe()
    assert outcome_of(run).error_class == "bad_flag"
    problems = BACKEND.preflight([_request(git_repo)], env)
    assert any("IS_SANDBOX=1" in p for p in problems)


# A full name is passed through as is (even a misspelt one: only the API can refuse it);
# an alias such as `opus`, cpo's config example, is resolved by the CLI.
@pytest.mark.parametrize(
    ("model", "sent"), [("claude-sonnet-4-5", "claude-sonnet-4-5"), ("opus", "claude-opus-")]
)
def test_model_flag_selects_the_requested_model(
    claude_bin: str, api: ScriptedServer, git_repo: Path, model: str, sent: str
) -> None:
    api.script([text("hi")])
    run = run_cli([*base_argv(claude_bin), "--model", model], cwd=git_repo, env=cli_env(api))
    assert run.returncode == 0, run.describe()
    assert run.init["model"].startswith(sent)
    models = {r.body["model"] for r in api.main_requests if r.body}
    assert len(models) == 1 and models.pop().startswith(sent)


def test_max_turns_reached_is_error_max_turns(
    claude_bin: str, api: ScriptedServer, git_repo: Path
) -> None:
    api.script([write("{cwd}/a.txt", "a\n"), write("{cwd}/b.txt", "b\n"), text("done")])
    run = run_cli([*base_argv(claude_bin), "--max-turns", "1"], cwd=git_repo, env=cli_env(api))
    assert run.returncode == 1, run.describe()
    res = run.result
    assert res["subtype"] == "error_max_turns"
    assert res["is_error"] is True
    assert res["terminal_reason"] == "max_turns"
    assert (git_repo / "a.txt").exists()  # the one allowed turn ran its tool
    assert not (git_repo / "b.txt").exists()
    outcome = outcome_of(run)
    assert outcome.error_class == "max_turns"


def test_max_turns_not_reached_is_success(
    claude_bin: str, api: ScriptedServer, git_repo: Path
) -> None:
    api.script([write("{cwd}/a.txt", "a\n"), text("done")])
    run = run_cli([*base_argv(claude_bin), "--max-turns", "5"], cwd=git_repo, env=cli_env(api))
    assert run.returncode == 0, run.describe()
    assert run.result["subtype"] == "success"


AGENT_MD = """---
name: cpo-contract-agent
description: Agent used by cpo's contract tests.
---
AGENT-BODY-MARKER-91c2: you are the cpo contract test agent.
"""


def test_agent_flag_with_an_installed_agent(
    claude_bin: str, api: ScriptedServer, git_repo: Path
) -> None:
    agents = git_repo / ".claude" / "agents"
    agents.mkdir(parents=True)
    (agents / "cpo-contract-agent.md").write_text(AGENT_MD)
    api.script([text("hi")])
    run = run_cli(
        [*base_argv(claude_bin), "--agent", "cpo-contract-agent"], cwd=git_repo, env=cli_env(api)
    )
    assert run.returncode == 0, run.describe()
    assert "cpo-contract-agent" in run.init["agents"]
    system = "\n".join(json.dumps(r.body.get("system")) for r in api.main_requests if r.body)
    assert "AGENT-BODY-MARKER-91c2" in system


def test_agent_flag_with_an_unknown_agent_exits_1_at_once(
    claude_bin: str, api: ScriptedServer, git_repo: Path
) -> None:
    api.script([text("must not be asked")])
    run = run_cli(
        [*base_argv(claude_bin), "--agent", "no-such-agent"], cwd=git_repo, env=cli_env(api)
    )
    assert run.returncode == 1, run.describe()
    assert "--agent 'no-such-agent' not found. Available agents:" in run.stderr
    assert api.main_requests == []
    outcome = outcome_of(run)
    assert outcome.error_class == "agent_error"
    assert outcome.error_text is not None and "no-such-agent" in outcome.error_text


@pytest.mark.parametrize("prompt", ["PROTOCOL-APPENDED-5d1e: write the marker", ""])
def test_append_system_prompt_reaches_the_model(
    claude_bin: str, api: ScriptedServer, git_repo: Path, prompt: str
) -> None:
    api.script([text("hi")])
    run = run_cli(
        [*base_argv(claude_bin), "--append-system-prompt", prompt], cwd=git_repo, env=cli_env(api)
    )
    assert run.returncode == 0, run.describe()
    body = api.main_requests[0].body or {}
    system = json.dumps(body.get("system"))
    # Appended to the default system prompt, not replacing it.
    assert "helps users with software engineering tasks" in system
    assert prompt in system


def test_unknown_flag_is_refused(claude_bin: str, api: ScriptedServer, git_repo: Path) -> None:
    run = run_cli([*base_argv(claude_bin), "--no-such-flag"], cwd=git_repo, env=cli_env(api))
    assert run.returncode == 1
    assert "error: unknown option '--no-such-flag'" in run.stderr


def _request(worktree: Path, **kw: object) -> AgentRequest:
    fields: dict[str, object] = {
        "task_id": "task-001",
        "wave": 1,
        "prompt": "do it",
        "worktree": worktree,
        "parallel_dir": worktree,
        "system_prompt": "Commit, then write .claude-task-complete.",
    }
    fields.update(kw)
    return AgentRequest(**fields)  # type: ignore[arg-type]


def test_the_backends_full_argv_is_accepted(
    claude_bin: str, api: ScriptedServer, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cpo's own argv builder, every optional flag set, against the real CLI."""
    agents = git_repo / ".claude" / "agents"
    agents.mkdir(parents=True)
    (agents / "cpo-contract-agent.md").write_text(AGENT_MD)
    monkeypatch.setenv("CPO_CLAUDE_BIN", claude_bin)
    req = _request(
        git_repo,
        model="claude-sonnet-4-5",
        max_turns=7,
        agent="cpo-contract-agent",
        permission_mode="bypassPermissions",
    )
    argv = BACKEND.argv(req)
    for flag in (
        "-p",
        "--verbose",
        "--model",
        "--max-turns",
        "--agent",
        "--append-system-prompt",
        "--permission-mode",
        "--output-format",
    ):
        assert flag in argv
    api.script([write("{cwd}/" + MARKER, "done\n"), text("done")])
    env = BACKEND.env(req, cli_env(api, CLAUDECODE="1"))
    run = run_cli(argv, cwd=git_repo, env=env, prompt=req.prompt)
    assert run.returncode == 0, run.describe()
    assert (git_repo / MARKER).exists()
    outcome = outcome_of(run)
    assert outcome.reported_result and not outcome.is_error


# -- tools really run in the cwd ------------------------------------------------------------
def test_write_bash_commit_and_marker(claude_bin: str, api: ScriptedServer, git_repo: Path) -> None:
    api.script(
        [
            write("{cwd}/src/a.txt", "hello\n"),
            bash("git add src && git commit -q -m 'add a' && git log --oneline -1"),
            write("{cwd}/" + MARKER, '{"task_completed": true, "summary": "added a"}'),
            text("All done."),
        ]
    )
    run = run_cli(base_argv(claude_bin), cwd=git_repo, env=cli_env(api))
    assert run.returncode == 0, run.describe()
    assert (git_repo / "src" / "a.txt").read_text() == "hello\n"
    assert git(git_repo, "log", "-1", "--format=%s") == "add a"
    assert git(git_repo, "show", "--name-only", "--format=", "HEAD") == "src/a.txt"
    assert json.loads((git_repo / MARKER).read_text())["task_completed"] is True

    res = run.result
    # The fields cpo's parser reads, with the types it expects.
    assert res["subtype"] == "success" and res["is_error"] is False
    assert res["api_error_status"] is None
    assert isinstance(res["session_id"], str) and res["session_id"]
    assert res["num_turns"] == 4
    assert isinstance(res["usage"]["input_tokens"], int)
    assert isinstance(res["usage"]["output_tokens"], int)
    assert res["total_cost_usd"] > 0
    assert res["result"] == "All done."
    tool_uses = [
        b
        for e in run.of_type("assistant")
        for b in e["message"]["content"]
        if b["type"] == "tool_use"
    ]
    assert [b["name"] for b in tool_uses] == ["Write", "Bash", "Write"]

    outcome = outcome_of(run)
    assert outcome.reported_result and not outcome.is_error and outcome.error_class is None
    assert outcome.session_id == res["session_id"]
    assert outcome.num_turns == 4
    assert outcome.input_tokens == res["usage"]["input_tokens"]
    assert outcome.cost_usd == res["total_cost_usd"]
    assert outcome.final_text == "All done."


def test_task_that_never_writes_the_marker_still_succeeds_as_a_run(
    claude_bin: str, api: ScriptedServer, git_repo: Path
) -> None:
    """The CLI has no notion of the marker: deciding `no_completion_marker` is cpo's job."""
    api.script([write("{cwd}/a.txt", "a\n"), text("I did not write the marker.")])
    run = run_cli(base_argv(claude_bin), cwd=git_repo, env=cli_env(api))
    assert run.returncode == 0, run.describe()
    assert not (git_repo / MARKER).exists()
    assert outcome_of(run).is_error is False


# -- API failures --------------------------------------------------------------------------
def test_overload_is_retried_by_the_cli_then_succeeds(
    claude_bin: str, api: ScriptedServer, git_repo: Path
) -> None:
    api.script([error(529), error(529), write("{cwd}/" + MARKER, "done\n"), text("ok")])
    run = run_cli(base_argv(claude_bin), cwd=git_repo, env=cli_env(api))
    assert run.returncode == 0, run.describe()
    retries = run.of_type("system", "api_retry")
    assert [r["error_status"] for r in retries] == [529, 529]
    assert [r["attempt"] for r in retries] == [1, 2]
    assert retries[0]["error"] == "overloaded"
    assert (git_repo / MARKER).exists()
    outcome = outcome_of(run)
    assert not outcome.is_error and outcome.error_class is None


def test_persistent_overload_is_classified_overloaded(
    claude_bin: str, api: ScriptedServer, git_repo: Path
) -> None:
    api.script([error(529, sticky=True)])
    run = run_cli(
        base_argv(claude_bin), cwd=git_repo, env=cli_env(api, CLAUDE_CODE_MAX_RETRIES="1")
    )
    assert run.returncode == 1, run.describe()
    res = run.result
    assert res["is_error"] is True
    assert res["api_error_status"] == 529
    assert len(run.of_type("system", "api_retry")) == 1
    synthetic = [e for e in run.of_type("assistant") if e.get("error")]
    assert synthetic and synthetic[0]["message"]["model"] == "<synthetic>"
    assert outcome_of(run).error_class == "overloaded"


def test_bad_request_is_an_error_result(
    claude_bin: str, api: ScriptedServer, git_repo: Path
) -> None:
    api.script([error(400)])
    run = run_cli(base_argv(claude_bin), cwd=git_repo, env=cli_env(api))
    assert run.returncode == 1, run.describe()
    assert run.result["is_error"] is True
    assert run.result["api_error_status"] == 400
    assert run.of_type("system", "api_retry") == []  # a 400 is not retried
    assert outcome_of(run).error_class == "agent_error"


def test_no_api_key_is_classified_auth(
    claude_bin: str, api: ScriptedServer, git_repo: Path
) -> None:
    env = cli_env(api)
    del env["ANTHROPIC_API_KEY"]
    api.script([text("must not be asked")])
    run = run_cli(base_argv(claude_bin), cwd=git_repo, env=env)
    assert run.returncode == 1, run.describe()
    res = run.result
    assert res["is_error"] is True and res["subtype"] == "success"
    assert "Not logged in" in res["result"]
    assert run.init["apiKeySource"] == "none"
    assert api.main_requests == []
    assert outcome_of(run).error_class == "auth"


def test_rejected_api_key_is_classified_auth(
    claude_bin: str, api: ScriptedServer, git_repo: Path
) -> None:
    # The CLI retries a 401 like an overload (10 times by default, backing off to ~30 s
    # between attempts: several minutes), so keep the retries down here.
    api.script([error(401, sticky=True)])
    run = run_cli(
        base_argv(claude_bin), cwd=git_repo, env=cli_env(api, CLAUDE_CODE_MAX_RETRIES="1")
    )
    assert run.returncode == 1, run.describe()
    retries = run.of_type("system", "api_retry")
    assert [(r["error_status"], r["error"]) for r in retries] == [(401, "authentication_failed")]
    assert run.result["is_error"] is True
    assert run.result["api_error_status"] == 401
    assert outcome_of(run).error_class == "auth"


def test_stalled_api_keeps_the_cli_waiting_until_its_group_is_killed(
    claude_bin: str, api: ScriptedServer, git_repo: Path
) -> None:
    api.script([stall()])
    proc = subprocess.Popen(
        base_argv(claude_bin),
        cwd=git_repo,
        env=cli_env(api),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(b"do the task")
        proc.stdin.close()
        deadline = time.monotonic() + 30
        while api.stalled == 0 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert api.stalled == 1, api.debug_log()
        time.sleep(1.0)
        assert proc.poll() is None, "the CLI gave up on a stalled API by itself"
    finally:
        kill_group(proc.pid)
        proc.wait(timeout=10)
    assert group_members(proc.pid) == []
