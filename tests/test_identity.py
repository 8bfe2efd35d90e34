"""No git identity: cpo says so before starting and never invents one (issue 11, item 6)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import git
from tests.runkit import cpo, make_spec

pytestmark = pytest.mark.usefixtures("fake_claude")

_IDENTITY_VARS = (
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
)


def _no_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """No name or email anywhere; useConfigOnly stops git from guessing one from the host
    name, whatever this machine's host name is (the user's own GIT_CONFIG_* entry, which
    cpo must keep beside its gc.auto=0)."""
    for key in _IDENTITY_VARS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "user.useConfigOnly")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "true")


def _ok(name: str) -> str:
    return f"@script write {name} {name}\n@script commit add {name}\n@script marker"


def test_run_without_identity_stops_at_preflight_with_the_fix(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_spec(git_repo, [{"task-001": _ok("a.txt")}])
    _no_identity(monkeypatch)
    proc = cpo("run", str(root), cwd=git_repo)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "git has no user identity" in out
    assert "git config --global user.email" in out
    # Nothing was started: no integration branch, no task branch.
    assert git(git_repo, "branch", "--list", "integration/*", "feature/*") == ""


def test_integrate_without_identity_never_commits_into_the_users_branch(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_spec(git_repo, [{"task-001": _ok("a.txt")}])
    assert cpo("run", str(root), cwd=git_repo).returncode == 0
    before = git(git_repo, "rev-parse", "main")
    _no_identity(monkeypatch)
    proc = cpo("integrate", str(root), "--allow-checkout-merge", cwd=git_repo)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "git has no user identity" in proc.stdout + proc.stderr
    assert git(git_repo, "rev-parse", "main") == before
    authors = git(git_repo, "log", "--all", "--format=%ae")
    assert "cpo@localhost" not in authors


def test_demo_works_without_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_identity(monkeypatch)
    proc = cpo("demo", "--dir", str(tmp_path / "demo"), cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The identity lives in the throwaway repository only.
    assert not (Path(os.environ["HOME"]) / ".gitconfig").exists()
