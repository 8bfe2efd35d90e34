"""Preflight refuses what cannot work and leaves nothing behind when it does (issue 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runkit import cpo, make_spec

pytestmark = pytest.mark.usefixtures("fake_claude")

OK = "@script write a.txt a\n@script commit add a\n@script marker"


@pytest.mark.parametrize(
    ("root", "why"),
    [
        (".", "is the repository itself"),
        (".git/worktrees-of-mine", "is inside git's own folder"),
        ("parallel/TS-0042/wt", "is inside the parallel directory"),
        ("README.md/wt", "cannot be made"),
    ],
)
def test_a_workspace_root_that_cannot_work_is_refused(git_repo: Path, root: str, why: str) -> None:
    spec = make_spec(git_repo, [{"task-001": OK}])
    proc = cpo("run", str(spec), "--workspace-root", root, cwd=git_repo)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert why in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_refused_run_creates_no_workspace_folder(git_repo: Path) -> None:
    spec = make_spec(git_repo, [{"task-001": OK}])
    (git_repo / "dirt.txt").write_text("uncommitted\n")
    proc = cpo("run", str(spec), cwd=git_repo)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert not (git_repo.parent / "workspaces").exists()
    assert not (spec / "logs").exists()
    assert not list(git_repo.parent.glob(".cpo-write-test-*"))
