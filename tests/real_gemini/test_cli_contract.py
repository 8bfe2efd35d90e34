"""Contract tests: the real `gemini` against the scripted Gemini API, its stream-json fed
to cpo's own parser (`cpo.agents.gemini.GeminiParser`).

Each run uses cpo's argv and environment for the request (the real binary as argv[0]).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cpo.agents.base import AgentOutcome, AgentRequest
from cpo.agents.gemini import BACKEND, GeminiParser
from tests.realcli import CliRun, run_cli
from tests.realcli_api import Turn, error, text

from .conftest import cli_env
from .server import GeminiApi, shell, write

pytestmark = pytest.mark.real_gemini


def run_gemini(
    gemini_bin: str,
    cwd: Path,
    env: dict[str, str],
    api: GeminiApi,
    turns: list[Turn],
    **fields: str,
) -> tuple[CliRun, AgentOutcome, list[str]]:
    api.script(turns)
    req = AgentRequest(task_id="t", wave=1, prompt="p", worktree=cwd, parallel_dir=cwd, **fields)
    argv = [gemini_bin, *BACKEND.argv(req)[1:]]
    run = run_cli(argv, cwd=cwd, env=BACKEND.env(req, env), prompt="PROMPT-7f3a")
    parser = GeminiParser()
    actions = [e.action for line in run.stdout.splitlines() for e in parser.feed(line)]
    return run, parser.finish(run.returncode, run.stderr), [a for a in actions if a]


def test_final_text_session_and_stats(
    gemini_bin: str, git_repo: Path, env: dict[str, str], api: GeminiApi
) -> None:
    run, out, _ = run_gemini(
        gemini_bin, git_repo, env, api, [text("answered")], system_prompt="SYS-9c1"
    )
    assert run.returncode == 0 and not out.is_error, run.describe()
    assert out.final_text == "answered" and out.reported_result
    assert out.session_id == run.of_type("init")[0]["session_id"]
    # the stats add up every model call, the router's classifier included
    answered = len(api.requests)
    assert (out.input_tokens, out.output_tokens) == (1000 * answered, 100 * answered)
    assert out.extra["tool_calls"] == 0
    sent = json.dumps(api.main_requests[0].body)
    # stdin first, then the -p text (cpo's protocol) after it
    assert "PROMPT-7f3a\\n\\nSYS-9c1" in sent


def test_tool_calls_run_in_the_worktree_and_show_as_actions(
    gemini_bin: str, git_repo: Path, env: dict[str, str], api: GeminiApi
) -> None:
    turns = [
        write("{cwd}/src/a.txt", "alpha\n"),
        shell("echo beta > b.txt && git add -A && git commit -q -m scripted"),
        text("done"),
    ]
    run, out, actions = run_gemini(gemini_bin, git_repo, env, api, turns)
    assert run.returncode == 0 and not out.is_error, run.describe()
    assert (git_repo / "src" / "a.txt").read_text() == "alpha\n"
    assert (git_repo / "b.txt").read_text() == "beta\n"
    assert actions[0].startswith("write_file ") and actions[0].endswith("/repo/src/a.txt")
    assert actions[1].startswith("run_shell_command: echo beta > b.txt")
    assert out.extra["tool_calls"] == 2 and out.final_text == "done"


def test_read_only_is_plan_mode_which_refuses_writes(
    gemini_bin: str, git_repo: Path, env: dict[str, str], api: GeminiApi
) -> None:
    turns = [write("{cwd}/x.txt", "x\n"), text("done")]
    run, _, _ = run_gemini(gemini_bin, git_repo, env, api, turns, sandbox_mode="read-only")
    assert not (git_repo / "x.txt").exists(), run.describe()
    results = run.of_type("tool_result")
    assert results and results[0]["status"] == "error", run.describe()


def test_rate_limit_retried_by_the_cli_then_success(
    gemini_bin: str, git_repo: Path, env: dict[str, str], api: GeminiApi
) -> None:
    run, out, _ = run_gemini(gemini_bin, git_repo, env, api, [error(429), text("after")])
    assert run.returncode == 0 and not out.is_error, run.describe()
    assert out.final_text == "after"


@pytest.mark.parametrize(("status", "error_class"), [(429, "rate_limited"), (503, "overloaded")])
def test_persistent_api_errors_are_classified(
    gemini_bin: str,
    git_repo: Path,
    env: dict[str, str],
    api: GeminiApi,
    status: int,
    error_class: str,
) -> None:
    run, out, _ = run_gemini(gemini_bin, git_repo, env, api, [error(status, sticky=True)])
    # gemini exits with the HTTP status (mod 256): 429 -> 173, 503 -> 247
    assert run.returncode == status % 256 and out.is_error, run.describe()
    assert out.error_class == error_class, (out.error_text, run.describe())


def test_a_rejected_key_is_auth(
    gemini_bin: str, git_repo: Path, tmp_path: Path, api: GeminiApi
) -> None:
    env = dict(cli_env(tmp_path / "gemini-home", api), GEMINI_API_KEY="bad-key")
    run, out, _ = run_gemini(gemini_bin, git_repo, env, api, [text("never")])
    assert run.returncode != 0 and out.is_error, run.describe()
    assert out.error_class == "auth", (out.error_text, run.describe())
    assert api.main_requests == []
