"""`cpo run` and `cpo parallel` end to end with the real `codex` CLI and a scripted API
(the scenarios are in tests/realcli_cpo.py, shared with the real_gemini suite).

Tasks run with sandbox mode `full` (`--sandbox-mode full`: a task file's
`sandbox_mode` is not read by `cpo run`): in cpo's default (`--sandbox workspace-write`) codex
keeps `.git` read-only and an agent cannot commit in its worktree (test_cli_contract.py
shows it; cpo then commits what it left).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import realcli_cpo as scenario
from tests.realcli import on_path

from .conftest import KEY_VAR
from .server import ResponsesApi, patch, shell

pytestmark = pytest.mark.real_codex

KIT = scenario.Kit(
    "codex",
    patch,
    shell,
    run_flags=("--sandbox-mode", "full"),
    task_fields={"sandbox_mode": "full"},
)


@pytest.fixture
def cpo_env(codex_bin: str, env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return on_path(tmp_path, "codex", codex_bin, env)


def test_two_wave_spec_built_by_real_tool_calls_and_merged(
    git_repo: Path, api: ResponsesApi, cpo_env: dict[str, str]
) -> None:
    scenario.two_wave_spec_merged(KIT, git_repo, api, cpo_env)


def test_task_that_never_writes_the_marker(
    git_repo: Path, api: ResponsesApi, cpo_env: dict[str, str]
) -> None:
    scenario.no_marker_fails(KIT, git_repo, api, cpo_env)


def test_rate_limit_then_success_through_cpos_retry(
    git_repo: Path, api: ResponsesApi, cpo_env: dict[str, str]
) -> None:
    scenario.rate_limit_then_success(KIT, git_repo, api, cpo_env)


def test_persistent_overload_is_classified(
    git_repo: Path, api: ResponsesApi, cpo_env: dict[str, str]
) -> None:
    scenario.persistent_overload(KIT, git_repo, api, cpo_env)


def test_auth_failure_stops_launches(
    git_repo: Path, api: ResponsesApi, cpo_env: dict[str, str]
) -> None:
    scenario.auth_failure_stops_launches(KIT, git_repo, api, dict(cpo_env, **{KEY_VAR: "sk-bad"}))


def test_stalled_api_is_killed_by_the_timeout_with_no_process_left(
    git_repo: Path, api: ResponsesApi, cpo_env: dict[str, str], tmp_path: Path
) -> None:
    scenario.stalled_api_timed_out(KIT, git_repo, api, cpo_env, tmp_path)


def test_parallel_runs_real_codex_tasks(
    api: ResponsesApi, cpo_env: dict[str, str], tmp_path: Path
) -> None:
    scenario.parallel_one_ok_one_overloaded(KIT, api, cpo_env, tmp_path)
