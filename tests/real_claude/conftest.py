"""Fixtures for the real_claude suite: the real `claude` CLI against a scripted local API.

The CLI is looked for in `$CPO_REAL_CLAUDE`, then in `.cpo-tools/node_modules/.bin/claude`
(where `.ci/run` installs it with npm). When it is missing or does not run, every test here
is skipped with the reason, and the reason is printed at the end of the session too, so a
skipped contract suite is never silent.
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests import realcli

from .server import ScriptedServer

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_CLI = REPO_ROOT / ".cpo-tools" / "node_modules" / ".bin" / "claude"
PINNED_VERSION = (Path(__file__).parent / "CLAUDE_VERSION").read_text().strip()
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0

# Keep the CLI offline and quick: no auto-update, telemetry, error reporting, feedback
# surveys or feature-flag fetches (all of which go to anthropic.com, not to our server).
OFFLINE_ENV = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY": "1",
    "CLAUDE_CODE_DISABLE_TERMINAL_TITLE": "1",
}
TEST_KEY = "sk-ant-test-scripted"
# A test never waits on the CLI longer than this; a hang is a failure, not a stuck CI.
CLI_TIMEOUT = 60.0


@functools.lru_cache(maxsize=1)
def locate_cli() -> tuple[str | None, str]:
    """(path, version) of a working CLI, or (None, why not)."""
    configured = os.environ.get("CPO_REAL_CLAUDE")
    path = Path(configured) if configured else LOCAL_CLI
    where = "$CPO_REAL_CLAUDE" if configured else ".cpo-tools (run .ci/run or `npm install "
    if not configured:
        where += f"--prefix .cpo-tools @anthropic-ai/claude-code@{PINNED_VERSION}`)"
    if not path.exists():
        return None, f"real claude CLI not found at {path} ({where})"
    try:
        out = subprocess.run(
            [str(path), "--version"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **OFFLINE_ENV},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"real claude CLI at {path} does not run: {exc}"
    if out.returncode != 0:
        # e.g. npm ran without install scripts: "Error: claude native binary not installed."
        return None, f"real claude CLI at {path} --version exited {out.returncode}: " + (
            out.stderr.strip().splitlines() or ["(no stderr)"]
        )[0]
    return str(path), out.stdout.strip()


def _status_line() -> str:
    path, info = locate_cli()
    if path is None:
        return f"real_claude suite SKIPPED: {info}"
    note = "" if info.split()[0] == PINNED_VERSION else f" (pinned {PINNED_VERSION})"
    return f"real_claude suite: claude CLI {info}{note} at {path}"


def pytest_report_header(config: pytest.Config) -> str:
    return _status_line()


_SELECTED = pytest.StashKey[bool]()


def pytest_collection_finish(session: pytest.Session) -> None:
    session.config.stash[_SELECTED] = any(
        item.get_closest_marker("real_claude") for item in session.items
    )


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    # `pytest -q` shows no header, and this conftest is not an initial one on a plain
    # `pytest`, so the CLI version (or why the suite was skipped) is printed here too.
    if config.stash.get(_SELECTED, False):
        terminalreporter.write_sep("-", _status_line())
    else:
        terminalreporter.write_sep(
            "-", "real_claude suite not selected (`pytest -m real_claude` or .ci/run runs it)"
        )


@pytest.fixture(scope="session")
def claude_bin() -> str:
    path, info = locate_cli()
    if path is None:
        pytest.skip(info)
    return path


@pytest.fixture
def api() -> Iterator[ScriptedServer]:
    server = ScriptedServer().start()
    yield server
    server.stop()


@pytest.fixture
def cpo_env(claude_bin: str, api: ScriptedServer, tmp_path: Path) -> dict[str, str]:
    """The environment cpo runs in: the real CLI as `claude` first on PATH, our API."""
    bin_dir = tmp_path / "claude-bin"
    bin_dir.mkdir()
    (bin_dir / "claude").symlink_to(claude_bin)
    env = cli_env(api)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env.pop("CPO_CLAUDE_BIN", None)
    return env


def cli_env(server: ScriptedServer | None, **extra: str) -> dict[str, str]:
    """The environment a test gives the CLI: the isolated HOME of tests/conftest.py, no
    credentials or settings inherited from whoever runs the tests, our server as the API.

    Give a server even to runs that fail before any request: without ANTHROPIC_BASE_URL
    the CLI (2.1.197) spends ~6 s on api.anthropic.com before printing even a flag error
    when that host is unreachable."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "CLAUDE_CODE_", "CLAUDE_CONFIG"))
        and k not in ("CLAUDECODE", "IS_SANDBOX")
    }
    env.update(OFFLINE_ENV)
    if server is not None:
        env["ANTHROPIC_BASE_URL"] = server.url
        env["ANTHROPIC_API_KEY"] = TEST_KEY
    if IS_ROOT:
        env["IS_SANDBOX"] = "1"  # bypassPermissions is refused as root without it
    env.update(extra)
    return env


class CliRun(realcli.CliRun):
    """A claude run: its stream-json result and init records at hand."""

    @property
    def result(self) -> dict[str, Any]:
        results = [e for e in self.events if e.get("type") == "result"]
        assert results, f"no result line; rc={self.returncode}\n{self.describe()}"
        return results[-1]

    @property
    def init(self) -> dict[str, Any]:
        return next(e for e in self.events if e.get("subtype") == "init")

    def of_type(self, kind: str, subtype: str | None = None) -> list[dict[str, Any]]:
        return [e for e in super().of_type(kind) if subtype is None or e.get("subtype") == subtype]


def run_cli(
    argv: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    prompt: str = "do the task",
    timeout: float = CLI_TIMEOUT,
) -> CliRun:
    """Run the CLI to completion in its own process group; the prompt goes on stdin."""
    run = realcli.run_cli(argv, cwd=cwd, env=env, prompt=prompt, timeout=timeout)
    return CliRun(run.argv, run.returncode, run.stdout, run.stderr, run.events)


def kill_group(pgid: int) -> None:
    # The real CLI gets longer to end on SIGTERM than the fakes.
    realcli.kill_group(pgid, grace=0.5)


def group_members(pgid: int) -> list[str]:
    """Live (non-zombie) processes of a process group, as `pid comm` strings."""
    out = subprocess.run(
        ["ps", "-e", "-o", "pid=,pgid=,stat=,comm="], capture_output=True, text=True, check=True
    ).stdout
    alive = []
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) == 4 and parts[1] == str(pgid) and not parts[2].startswith("Z"):
            alive.append(f"{parts[0]} {parts[3]}")
    return alive


def base_argv(claude: str, mode: str = "bypassPermissions") -> list[str]:
    """What the claude backend always passes (README, claude), before the optional flags."""
    return [claude, "-p", "--output-format", "stream-json", "--verbose", "--permission-mode", mode]
