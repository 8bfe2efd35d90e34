"""`cpo run` and `cpo parallel` end to end with the real `gemini` CLI and a scripted API
(the scenarios are in tests/realcli_cpo.py, shared with the real_codex suite). Gemini
retries a 429 itself (after ~5 s), so a rate limit costs no cpo attempt.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import realcli_cpo as scenario
from tests.realcli import on_path

from .server import GeminiApi, shell, write

pytestmark = pytest.mark.real_gemini

KIT = scenario.Kit(
    "gemini",
    lambda path, content: write("{cwd}/" + path, content),
    shell,
    cli_retries_rate_limit=True,
)


@pytest.fixture
def cpo_env(gemini_bin: str, env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return on_path(tmp_path, "gemini", gemini_bin, env)


def test_two_wave_spec_built_by_real_tool_calls_and_merged(
    git_repo: Path, api: GeminiApi, cpo_env: dict[str, str]
) -> None:
    scenario.two_wave_spec_merged(KIT, git_repo, api, cpo_env)


def test_task_that_never_writes_the_marker(
    git_repo: Path, api: GeminiApi, cpo_env: dict[str, str]
) -> None:
    scenario.no_marker_fails(KIT, git_repo, api, cpo_env)


def test_rate_limit_then_success(git_repo: Path, api: GeminiApi, cpo_env: dict[str, str]) -> None:
    scenario.rate_limit_then_success(KIT, git_repo, api, cpo_env)


def test_persistent_overload_is_classified(
    git_repo: Path, api: GeminiApi, cpo_env: dict[str, str]
) -> None:
    scenario.persistent_overload(KIT, git_repo, api, cpo_env)


def test_auth_failure_stops_launches(
    git_repo: Path, api: GeminiApi, cpo_env: dict[str, str]
) -> None:
    scenario.auth_failure_stops_launches(
        KIT, git_repo, api, dict(cpo_env, GEMINI_API_KEY="bad-key")
    )


def test_stalled_api_is_killed_by_the_timeout_with_no_process_left(
    git_repo: Path, api: GeminiApi, cpo_env: dict[str, str], tmp_path: Path
) -> None:
    scenario.stalled_api_timed_out(KIT, git_repo, api, cpo_env, tmp_path)


def test_parallel_runs_real_gemini_tasks(
    api: GeminiApi, cpo_env: dict[str, str], tmp_path: Path
) -> None:
    scenario.parallel_one_ok_one_overloaded(KIT, api, cpo_env, tmp_path)
