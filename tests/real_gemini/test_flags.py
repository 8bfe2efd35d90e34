"""Every flag cpo passes to `gemini`, accepted by the real CLI; no model needed.

Gemini parses its arguments (yargs) and settles its approval mode before it checks
authentication: with no auth configured, a run that stops with exit 41 and "Please set an
Auth method" has accepted every flag. Usage errors are run to the end: their exit codes
and texts are what cpo's parser reads.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cpo.agents.base import AgentRequest
from cpo.agents.gemini import BACKEND, TRUST_ENV, GeminiParser
from cpo.agents.modes import APPROVAL_MODES, SANDBOX_MODES
from tests.realcli import CliRun, run_cli

from .conftest import SPEC, locate

pytestmark = pytest.mark.real_gemini

NO_AUTH = "Please set an Auth method"
PROTOCOL = 'Write the marker.\nIt holds "JSON" with a \\ backslash and ünïcode.'


def request(repo: Path, **fields: str | None) -> AgentRequest:
    return AgentRequest(
        task_id="task-001", wave=1, prompt="go", worktree=repo, parallel_dir=repo, **fields
    )


def run_as_cpo(
    gemini_bin: str, req: AgentRequest, env: dict[str, str], extra: tuple[str, ...] = ()
) -> CliRun:
    """What cpo's gemini backend runs (argv and environment), with the real binary."""
    argv = [gemini_bin, *BACKEND.argv(req)[1:], *extra]
    return run_cli(argv, cwd=req.worktree, env=BACKEND.env(req, env))


def outcome(run: CliRun) -> tuple[str | None, str | None]:
    parser = GeminiParser()
    for line in run.stdout.splitlines():
        parser.feed(line)
    result = parser.finish(run.returncode, run.stderr)
    return result.error_class, result.error_text


def test_version_is_the_pinned_one(gemini_bin: str) -> None:
    _, version = locate()
    print(f"gemini CLI version: {version}")
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", version), version
    assert version == SPEC.pinned


def test_help_lists_every_flag_and_choice_cpo_uses(
    gemini_bin: str, git_repo: Path, offline_env: dict[str, str]
) -> None:
    """cpo's preflight reads `gemini --help` for this run's flags and choices."""
    reqs = [
        request(git_repo, model="gemini-x", system_prompt="p", approval_mode=a, sandbox_mode=s)
        for a in APPROVAL_MODES
        for s in SANDBOX_MODES
    ]
    assert BACKEND.preflight(reqs, dict(offline_env, CPO_GEMINI_BIN=gemini_bin)) == []


@pytest.mark.parametrize(
    ("approval", "sandbox"),
    [(a, "default") for a in APPROVAL_MODES] + [("default", s) for s in SANDBOX_MODES[1:]],
)
def test_every_mode_cpo_maps_is_accepted(
    gemini_bin: str, git_repo: Path, offline_env: dict[str, str], approval: str, sandbox: str
) -> None:
    req = request(
        git_repo,
        model="gemini-2.5-pro",
        system_prompt=PROTOCOL,
        approval_mode=approval,
        sandbox_mode=sandbox,
    )
    run = run_as_cpo(gemini_bin, req, offline_env)
    assert run.returncode == 41 and NO_AUTH in run.stderr, run.describe()
    # cpo's trust variable keeps the mode it chose (an untrusted folder falls back to default)
    assert "overridden" not in run.stderr, run.describe()
    assert outcome(run)[0] == "auth"


def test_an_untrusted_worktree_loses_its_approval_mode(
    gemini_bin: str, git_repo: Path, offline_env: dict[str, str]
) -> None:
    """Why cpo sets GEMINI_CLI_TRUST_WORKSPACE: without it yolo silently becomes default."""
    argv = [gemini_bin, *BACKEND.argv(request(git_repo))[1:]]
    run = run_cli(argv, cwd=git_repo, env={k: v for k, v in offline_env.items() if k != TRUST_ENV})
    assert run.returncode == 41, run.describe()
    assert 'Approval mode overridden to "default" because the current folder is not trusted' in (
        run.stderr
    )


# -- usage errors: exit codes and what cpo makes of them ----------------------------------
@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (("--bogus-flag",), "Unknown arguments: bogus-flag, bogusFlag"),
        (("--approval-mode", "sometimes"), "Invalid values:"),
        (("--output-format", "yaml"), "Invalid values:"),
        (("--yolo",), "Cannot use both --yolo (-y) and --approval-mode together"),
        (("-p",), "Not enough arguments following: p"),
    ],
)
def test_usage_errors_exit_1_and_are_bad_flags(
    gemini_bin: str,
    git_repo: Path,
    offline_env: dict[str, str],
    extra: tuple[str, ...],
    says: str,
) -> None:
    run = run_as_cpo(gemini_bin, request(git_repo), offline_env, extra)
    assert run.returncode == 1 and says in run.stderr, run.describe()
    assert run.stdout == ""
    error_class, text = outcome(run)
    assert error_class == "bad_flag", (error_class, text)
