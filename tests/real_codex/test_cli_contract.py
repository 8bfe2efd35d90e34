"""Contract tests: real `codex exec` runs against the scripted Responses API, its output
fed to cpo's own parser (`cpo.agents.codex.CodexParser`).

Each run uses cpo's argv for the request (the real binary as argv[0]), so a renamed
flag, a moved JSON field or a new guard in a future codex shows up here first.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import git

from cpo.agents.base import AgentOutcome, AgentRequest
from cpo.agents.codex import BACKEND, CodexParser
from tests.realcli import CliRun, run_cli
from tests.realcli_api import Turn, error, text

from .conftest import cli_env
from .server import ResponsesApi, patch, shell

pytestmark = pytest.mark.real_codex

COMMIT = "git add -A && git commit -q -m scripted"


def run_codex(
    codex_bin: str,
    cwd: Path,
    env: dict[str, str],
    api: ResponsesApi,
    turns: list[Turn],
    **fields: str,
) -> tuple[CliRun, AgentOutcome]:
    api.script(turns)
    req = AgentRequest(task_id="t", wave=1, prompt="p", worktree=cwd, parallel_dir=cwd, **fields)
    run = run_cli([codex_bin, *BACKEND.argv(req)[1:]], cwd=cwd, env=env, prompt="PROMPT-7f3a")
    parser = CodexParser()
    actions = [e.action for line in run.stdout.splitlines() for e in parser.feed(line)]
    run.events.append({"type": "cpo.actions", "actions": [a for a in actions if a]})
    return run, parser.finish(run.returncode, run.stderr)


def actions(run: CliRun) -> list[str]:
    return list(run.of_type("cpo.actions")[0]["actions"])


def test_final_text_session_and_usage(
    codex_bin: str, git_repo: Path, env: dict[str, str], api: ResponsesApi
) -> None:
    run, out = run_codex(codex_bin, git_repo, env, api, [text("answered")], system_prompt="SYS-9c1")
    assert run.returncode == 0 and not out.is_error, run.describe()
    assert out.final_text == "answered" and out.reported_result
    assert out.session_id == run.of_type("thread.started")[0]["thread_id"]
    assert (out.input_tokens, out.output_tokens, out.num_turns) == (1000, 100, 1)
    assert out.extra == {"cached_input_tokens": 200}
    sent = json.dumps(api.main_requests[0].body)
    # the prompt from stdin (`-`) and cpo's protocol as developer instructions
    assert "PROMPT-7f3a" in sent and "SYS-9c1" in sent


def test_tool_calls_run_in_the_worktree_and_show_as_actions(
    codex_bin: str, git_repo: Path, env: dict[str, str], api: ResponsesApi
) -> None:
    turns = [patch("src/a.txt", "alpha"), shell("echo beta > b.txt"), text("done")]
    run, out = run_codex(codex_bin, git_repo, env, api, turns)
    assert run.returncode == 0 and not out.is_error, run.describe()
    assert (git_repo / "src" / "a.txt").read_text() == "alpha\n"
    assert (git_repo / "b.txt").read_text() == "beta\n"
    write, bash = actions(run)
    assert write.startswith("Write ") and write.endswith("/repo/src/a.txt")
    assert bash == "Bash: /bin/bash -lc 'echo beta > b.txt'"


@pytest.mark.parametrize(("sandbox", "commits"), [("default", False), ("full", True)])
def test_workspace_write_sandbox_cannot_commit_in_a_worktree(
    codex_bin: str,
    git_repo: Path,
    env: dict[str, str],
    api: ResponsesApi,
    sandbox: str,
    commits: bool,
) -> None:
    """codex keeps `.git` read-only in workspace-write (cpo's default): an agent cannot
    commit in a task worktree, whose git dir is the main repository's; cpo then commits
    what it left (claim.py). `full` lets it commit."""
    worktree = git_repo.parent / "wt"
    git(git_repo, "worktree", "add", "-q", str(worktree), "-b", "task")
    turns = [shell(f"echo x > x.txt && {COMMIT}"), text("done")]
    run, out = run_codex(codex_bin, worktree, env, api, turns, sandbox_mode=sandbox)
    assert run.returncode == 0 and not out.is_error, run.describe()
    assert (worktree / "x.txt").exists()
    assert (git(worktree, "log", "-1", "--format=%s") == "scripted") is commits
    # 0.169 prints no command_execution item at all for the refused command
    assert bool(run.of_type("item.started")) is commits
    output = json.dumps(api.main_requests[1].body["input"][-1])
    assert ("index.lock': Read-only file system" in output) is not commits


def test_read_only_sandbox_refuses_writes(
    codex_bin: str, git_repo: Path, env: dict[str, str], api: ResponsesApi
) -> None:
    turns = [shell("echo x > x.txt"), text("done")]
    run, out = run_codex(codex_bin, git_repo, env, api, turns, sandbox_mode="read-only")
    assert run.returncode == 0 and not out.is_error, run.describe()
    assert not (git_repo / "x.txt").exists()


def test_overload_retried_by_the_cli_then_success(
    codex_bin: str, git_repo: Path, env: dict[str, str], api: ResponsesApi
) -> None:
    run, out = run_codex(codex_bin, git_repo, env, api, [error(503), text("after the overload")])
    assert run.returncode == 0 and not out.is_error, run.describe() + api.debug_log()
    assert out.final_text == "after the overload"


def test_a_rate_limit_is_not_retried_by_the_cli(
    codex_bin: str, git_repo: Path, env: dict[str, str], api: ResponsesApi
) -> None:
    """codex gives up on the first 429 (cpo's own retry is what gets past it)."""
    run, out = run_codex(codex_bin, git_repo, env, api, [error(429), text("never")])
    assert run.returncode == 1 and out.error_class == "rate_limited", run.describe()
    assert out.error_text == "exceeded retry limit, last status: 429 Too Many Requests"
    assert len(api.main_requests) == 1


@pytest.mark.parametrize(("status", "error_class"), [(429, "rate_limited"), (503, "overloaded")])
def test_persistent_api_errors_are_classified(
    codex_bin: str,
    git_repo: Path,
    env: dict[str, str],
    api: ResponsesApi,
    status: int,
    error_class: str,
) -> None:
    run, out = run_codex(codex_bin, git_repo, env, api, [error(status, sticky=True)])
    assert run.returncode == 1 and out.is_error, run.describe()
    assert out.error_class == error_class, (out.error_text, run.describe())


def test_a_rejected_key_is_auth(
    codex_bin: str, git_repo: Path, tmp_path: Path, api: ResponsesApi
) -> None:
    env = dict(cli_env(tmp_path / "codex-home", f"{api.url}/v1"), SCRIPTED_OPENAI_KEY="sk-bad")
    run, out = run_codex(codex_bin, git_repo, env, api, [text("never")])
    assert run.returncode == 1 and out.is_error, run.describe()
    assert out.error_class == "auth", (out.error_text, run.describe())
    assert api.main_requests == []
