"""Fixtures for the real_gemini suite: the real `gemini` CLI against a scripted Gemini API.

The CLI is looked for in `$CPO_REAL_GEMINI`, then in `.cpo-tools/node_modules/.bin/gemini`
(where `.ci/run` installs it with npm: one bundled JavaScript package). Without it every
test here is skipped with the reason, printed at the end of the session.

Each test gets its own GEMINI_CLI_HOME whose settings choose the `gemini-api-key` auth,
few retries (`general.maxAttempts`), and no update checks or usage statistics.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.realcli import CliSpec, read_pin, summary_hooks

from .server import GeminiApi

SPEC = CliSpec(
    name="gemini",
    package="@google/gemini-cli",
    pinned=read_pin(Path(__file__).parent, "GEMINI_VERSION"),
    env_var="CPO_REAL_GEMINI",
    marker="real_gemini",
)
TEST_KEY = "scripted-gemini-key"
QUIET_SETTINGS: dict[str, Any] = {
    "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
}


@functools.lru_cache(maxsize=1)
def locate() -> tuple[str | None, str]:
    return SPEC.locate(os.environ)


pytest_report_header, pytest_collection_finish, pytest_terminal_summary = summary_hooks(
    SPEC, lambda: SPEC.status_line(locate())
)


@pytest.fixture(scope="session")
def gemini_bin() -> str:
    path, info = locate()
    if path is None:
        pytest.skip(info)
    return path


@pytest.fixture
def api() -> Iterator[GeminiApi]:
    server = GeminiApi(TEST_KEY).start()
    yield server
    server.stop()


def cli_env(home: Path, server: GeminiApi | None, max_attempts: int = 2) -> dict[str, str]:
    """The environment a test gives gemini: its own GEMINI_CLI_HOME, no Gemini/Google
    variables inherited from whoever runs the tests; with `server`, that is the API."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GEMINI_", "GOOGLE_", "CPO_")) and k != "CLOUD_SHELL"
    }
    settings = json.loads(json.dumps(QUIET_SETTINGS))
    settings["general"]["maxAttempts"] = max_attempts
    if server is not None:
        settings["security"] = {"auth": {"selectedType": "gemini-api-key"}}
        env["GOOGLE_GEMINI_BASE_URL"] = server.url
        env["GEMINI_API_KEY"] = server.key
    (home / ".gemini").mkdir(parents=True, exist_ok=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps(settings))
    env["GEMINI_CLI_HOME"] = str(home)
    return env


@pytest.fixture
def env(api: GeminiApi, tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path / "gemini-home", api)


@pytest.fixture
def offline_env(tmp_path: Path) -> dict[str, str]:
    """No auth configured: gemini parses its flags, then stops with exit 41."""
    return cli_env(tmp_path / "gemini-home", None)
