"""`cpo integrate`: real runs with the scripted claude, then merging their integration branch."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import git
from tests.runkit import cpo, make_spec, repo_state

pytestmark = pytest.mark.usefixtures("fake_claude")

INTEG = "integration/TS-0042"


def _ok(name: str) -> str:
    return f"@script write {name} {name}\n@script commit add {name}\n@script marker"


def _run(repo: Path, *, validation: str = "test -f a.txt && test ! -f broken.txt") -> Path:
    root = make_spec(
        repo,
        [{"task-001": _ok("a.txt")}, {"task-002": _ok("b.txt")}],
        validation={1: validation, 2: "test -f b.txt"},
    )
    proc = cpo("run", str(root), cwd=repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root


def _parents(repo: Path, ref: str) -> list[str]:
    return git(repo, "rev-list", "--parents", "-n", "1", ref).split()[1:]


def _no_temp_worktree(repo: Path) -> bool:
    return ".integrate" not in git(repo, "worktree", "list")


def test_into_checked_out_main_prints_the_command_and_touches_nothing(git_repo: Path) -> None:
    root = _run(git_repo)
    before = repo_state(git_repo)
    proc = cpo("integrate", str(root), cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert repo_state(git_repo) == before
    assert "wave 1 validation: passed" in proc.stdout
    assert "wave 2 validation: passed" in proc.stdout
    assert f"not merged yet: main is checked out in {git_repo}" in proc.stdout
    command = next(
        line.strip() for line in proc.stdout.splitlines() if line.strip().startswith("git -C")
    )
    assert command.endswith(f"merge --no-ff -m 'Merge {INTEG} (cpo integrate TS-0042)' {INTEG}")
    assert _no_temp_worktree(git_repo)

    text = (root / "integration-report.md").read_text()
    assert text.startswith("# Integration report: TS-0042")
    assert "| task-001 | 1 | completed | 1 | 1 | `feature/TS-0042/task-001` |" in text
    assert "## Commits (" in text and "add a.txt" in text and "add b.txt" in text
    assert "- `a.txt`" in text and "- `b.txt`" in text
    assert "- wave 1: passed" in text and "`test -f a.txt && test ! -f broken.txt`" in text
    assert command in text

    # the printed command does the merge; integrating again has nothing left to do
    subprocess.run(command, shell=True, check=True, capture_output=True)
    assert _parents(git_repo, "main") == [before["main"], git(git_repo, "rev-parse", INTEG)]
    again = cpo("integrate", str(root), cwd=git_repo)
    assert again.returncode == 0
    assert f"nothing to merge: {INTEG} is already in main" in again.stdout


def test_allow_checkout_merge_fast_forwards_a_clean_checkout(git_repo: Path) -> None:
    root = _run(git_repo)
    old_main = git(git_repo, "rev-parse", "main")
    proc = cpo("integrate", str(root), "--allow-checkout-merge", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"merged {INTEG} into main" in proc.stdout
    assert _parents(git_repo, "main") == [old_main, git(git_repo, "rev-parse", INTEG)]
    assert git(git_repo, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert (git_repo / "a.txt").exists() and (git_repo / "b.txt").exists()
    assert git(git_repo, "status", "--porcelain", "--", ".", ":(exclude)parallel") == ""
    assert "- Result: merged" in (root / "integration-report.md").read_text()


def test_allow_checkout_merge_refuses_a_dirty_checkout(git_repo: Path) -> None:
    root = _run(git_repo)
    (git_repo / "README.md").write_text("my edit in progress\n")
    before = git(git_repo, "rev-parse", "main")
    proc = cpo("integrate", str(root), "--allow-checkout-merge", cwd=git_repo)
    assert proc.returncode == 1
    assert f"{git_repo} (where main is checked out) has uncommitted changes: README.md" in (
        proc.stderr
    )
    assert git(git_repo, "rev-parse", "main") == before
    assert (git_repo / "README.md").read_text() == "my edit in progress\n"


def test_into_a_branch_not_checked_out_moves_it(git_repo: Path) -> None:
    root = _run(git_repo)
    git(git_repo, "branch", "release", "main")
    before = repo_state(git_repo)
    proc = cpo("integrate", str(root), "--into", "release", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"merged {INTEG} into release" in proc.stdout
    assert _parents(git_repo, "release") == [before["main"], git(git_repo, "rev-parse", INTEG)]
    assert repo_state(git_repo) == before  # main and the working tree as they were
    assert _no_temp_worktree(git_repo)


def test_failed_validation_on_the_merge_result_leaves_the_target(git_repo: Path) -> None:
    root = _run(git_repo)
    # the target moved since the run, in a way that breaks wave 1's validation
    git(git_repo, "switch", "-q", "-c", "release")
    (git_repo / "broken.txt").write_text("x\n")
    git(git_repo, "add", "broken.txt")
    git(git_repo, "commit", "-q", "-m", "break it")
    git(git_repo, "switch", "-q", "main")
    release = git(git_repo, "rev-parse", "release")

    proc = cpo("integrate", str(root), "--into", "release", cwd=git_repo)
    assert proc.returncode == 1
    assert "wave 1 validation: failed (exit 1)" in proc.stdout
    assert "not merged: validation failed on the merge result; release is untouched" in (
        proc.stdout
    )
    assert git(git_repo, "rev-parse", "release") == release
    assert "- wave 1: FAILED (exit 1)" in (root / "integration-report.md").read_text()
    assert _no_temp_worktree(git_repo)

    proc = cpo("integrate", str(root), "--into", "release", "--no-validate", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert git(git_repo, "rev-parse", "release^1") == release
    assert "skipped (--no-validate)" in (root / "integration-report.md").read_text()


def test_conflict_leaves_the_target(git_repo: Path) -> None:
    root = _run(git_repo)
    git(git_repo, "switch", "-q", "-c", "release")
    (git_repo / "a.txt").write_text("a different a\n")
    git(git_repo, "add", "a.txt")
    git(git_repo, "commit", "-q", "-m", "other a")
    git(git_repo, "switch", "-q", "main")
    release = git(git_repo, "rev-parse", "release")
    proc = cpo("integrate", str(root), "--into", "release", cwd=git_repo)
    assert proc.returncode == 1
    assert f"not merged: {INTEG} conflicts with release in a.txt" in proc.stdout
    assert git(git_repo, "rev-parse", "release") == release
    assert _no_temp_worktree(git_repo)


def test_refuses_an_incomplete_run_unless_forced(git_repo: Path) -> None:
    root = make_spec(
        git_repo,
        [{"task-001": _ok("a.txt"), "task-002": "@script write b.txt b\n@script commit b"}],
    )
    assert cpo("run", str(root), "--nudges", "0", cwd=git_repo).returncode == 1
    git(git_repo, "branch", "release", "main")
    proc = cpo("integrate", str(root), "--into", "release", cwd=git_repo)
    assert proc.returncode == 1
    assert (
        "error: the run is failed, not completed: task-002 failed (no_completion_marker)"
        in proc.stderr
    )
    assert git(git_repo, "rev-parse", "release") == git(git_repo, "rev-parse", "main")
    assert not (root / "integration-report.md").exists()

    proc = cpo("integrate", str(root), "--into", "release", "--force", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = git(git_repo, "ls-tree", "-r", "--name-only", "release").splitlines()
    assert "a.txt" in files and "b.txt" not in files  # only what was merged


def test_no_run_yet(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": _ok("a.txt")}])
    proc = cpo("integrate", str(root), cwd=git_repo)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: no run in {root}: start one with cpo run {root}"
