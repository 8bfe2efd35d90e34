"""Shared fixtures: real git repositories in tmp_path, and a clean environment."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    )
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
    """The scripted `claude` (cpo.scripted_agent) first on PATH; returns its bin dir."""
    from cpo.scripted_agent import install_shim

    bin_dir = tmp_path / "bin"
    install_shim(bin_dir)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("IS_SANDBOX", "1")
    monkeypatch.setenv("CPO_FAKE_STATE", str(tmp_path / "fake-state"))
    monkeypatch.delenv("CPO_CLAUDE_BIN", raising=False)
    monkeypatch.delenv("CPO_FAKE_AGENTS", raising=False)
    return bin_dir


__all__ = ["git", "os"]
