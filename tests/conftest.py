"""Shared fixtures: real git repositories in tmp_path, and a clean environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# The quick suite keeps hypothesis' default number of examples; CI (`CI=true`, which .ci/run
# sets) tries ten times as many. Tests that fix `max_examples` themselves keep their count.
settings.register_profile("ci", max_examples=1000)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return out.stdout.strip()


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test gets its own HOME and git identity, so nothing leaks from the machine."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CLAUDECODE", raising=False)


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A real repository with one commit on `main`, at tmp_path/repo."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("# test repo\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


@pytest.fixture
def fake_claude(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The scripted `claude` (cpo.scripted.agent) first on PATH; returns its bin dir."""
    from cpo.scripted.agent import install_shim

    bin_dir = tmp_path / "bin"
    install_shim(bin_dir)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("IS_SANDBOX", "1")
    monkeypatch.setenv("CPO_FAKE_STATE", str(tmp_path / "fake-state"))
    monkeypatch.delenv("CPO_CLAUDE_BIN", raising=False)
    monkeypatch.delenv("CPO_FAKE_AGENTS", raising=False)
    return bin_dir


# -- fake codex and gemini CLIs (tests/fakes/) ----------------------------------------
FAKES = Path(__file__).parent / "fakes"


class FakeAgent:
    """A fake agent CLI on PATH; `calls()` are its recorded invocations, oldest first."""

    def __init__(self, bin_dir: Path, log: Path) -> None:
        self.bin_dir = bin_dir
        self.log = log

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]


def _install_fake(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeAgent:
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / name
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKES / (name + ".py")}" "$@"\n')
    shim.chmod(0o755)
    path = os.environ.get("PATH", "")
    if str(bin_dir) not in path.split(os.pathsep):
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{path}")
    log = tmp_path / "fake-agent-calls.jsonl"
    monkeypatch.setenv("FAKE_AGENT_LOG", str(log))
    monkeypatch.delenv(f"CPO_{name.upper()}_BIN", raising=False)
    return FakeAgent(bin_dir, log)


@pytest.fixture
def fake_codex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeAgent:
    """tests/fakes/codex.py first on PATH as `codex`."""
    monkeypatch.delenv("FAKE_CODEX_OLD", raising=False)
    return _install_fake("codex", tmp_path, monkeypatch)


@pytest.fixture
def fake_gemini(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeAgent:
    """tests/fakes/gemini.py first on PATH as `gemini`."""
    monkeypatch.delenv("FAKE_GEMINI_OLD", raising=False)
    monkeypatch.delenv("GEMINI_CLI_TRUST_WORKSPACE", raising=False)
    return _install_fake("gemini", tmp_path, monkeypatch)


__all__ = ["git", "os"]
