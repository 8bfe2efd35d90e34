"""Fixtures for the real_codex suite: the real `codex` CLI against a scripted Responses API.

The CLI is looked for in `$CPO_REAL_CODEX`, then in `.cpo-tools/node_modules/.bin/codex`
(where `.ci/run` installs it with npm; the npm package ships the native binary as the
optional dependency `@openai/codex-linux-x64`, nothing is downloaded at install time).
Without it every test here is skipped with the reason, printed at the end of the session.

Codex reads its model provider from `$CODEX_HOME/config.toml`; each test gets its own
CODEX_HOME whose provider `scripted` is the test's server (`wire_api = "responses"`, the
key in $SCRIPTED_OPENAI_KEY, no websockets, few retries).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.realcli import CliSpec, read_pin, summary_hooks

from .server import ResponsesApi

SPEC = CliSpec(
    name="codex",
    package="@openai/codex",
    pinned=read_pin(Path(__file__).parent, "CODEX_VERSION"),
    env_var="CPO_REAL_CODEX",
    marker="real_codex",
)
KEY_VAR = "SCRIPTED_OPENAI_KEY"
TEST_KEY = "sk-test-scripted-codex"
# A model codex 0.169 has metadata for: it offers the apply_patch tool, and no warning.
MODEL = "gpt-5.5"
# Nothing listens here: runs that must not reach a model still need a provider.
DEAD_URL = "http://127.0.0.1:9/v1"


@functools.lru_cache(maxsize=1)
def locate() -> tuple[str | None, str]:
    return SPEC.locate(os.environ)


pytest_report_header, pytest_collection_finish, pytest_terminal_summary = summary_hooks(
    SPEC, lambda: SPEC.status_line(locate())
)


@pytest.fixture(scope="session")
def codex_bin() -> str:
    path, info = locate()
    if path is None:
        pytest.skip(info)
    return path


@pytest.fixture
def api() -> Iterator[ResponsesApi]:
    server = ResponsesApi(TEST_KEY).start()
    yield server
    server.stop()


def write_config(home: Path, base_url: str, **provider: int | bool) -> Path:
    """A CODEX_HOME whose default provider is the scripted server at `base_url`."""
    settings = {
        "request_max_retries": 1,
        "stream_max_retries": 0,
        "supports_websockets": False,
        **provider,
    }
    lines = [
        f'model = "{MODEL}"',
        'model_provider = "scripted"',
        "[model_providers.scripted]",
        'name = "scripted"',
        f'base_url = "{base_url}"',
        f'env_key = "{KEY_VAR}"',
        'wire_api = "responses"',
        *(f"{k} = {str(v).lower()}" for k, v in settings.items()),
    ]
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text("\n".join(lines) + "\n")
    return home


def cli_env(home: Path, base_url: str, **provider: int | bool) -> dict[str, str]:
    """The environment a test gives codex: the isolated HOME of tests/conftest.py, no
    OpenAI/Codex variables inherited from whoever runs the tests, our provider."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODEX_", "CPO_"))}
    env["CODEX_HOME"] = str(write_config(home, base_url, **provider))
    env[KEY_VAR] = TEST_KEY
    return env


@pytest.fixture
def env(api: ResponsesApi, tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path / "codex-home", f"{api.url}/v1")


@pytest.fixture
def offline_env(tmp_path: Path) -> dict[str, str]:
    """For runs that stop before any model call: the provider points at a closed port."""
    return cli_env(tmp_path / "codex-home", DEAD_URL)
