"""`cpo integrate` validates the merge result under the conditions `cpo run` validated
under: the tree made ready as the run's integration worktree was (`.worktreeinclude`
files, shared folders, the spec's setup), and each command stopped at the validation
timeout. A validation that passed under `cpo run` must not fail here for want of a `.env`,
and a hanging one must not hang `cpo integrate`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git
from tests.runkit import cpo, make_spec

INTEG = "integration/TS-0042"
SECRET = "s3cret-t0ken-value-42"
# Some work, so that the integration branch has something to merge.
WORK = "echo x > x.txt && git add x.txt && git commit -qm x && : > .claude-task-complete"
AGENT = ("--backend", "command", "--agent-command", WORK)


def _run(repo: Path, validation: str, extra: dict[str, Any] | None = None) -> Path:
    """A completed run of a one-task spec, and a `release` branch at main to merge into."""
    root = make_spec(repo, [{"task-001": "x"}], validation={1: validation}, extra=extra)
    proc = cpo("run", str(root), "--repair", "0", *AGENT, cwd=repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    git(repo, "branch", "release", "main")
    return root


def _commit_on_release(repo: Path, name: str) -> str:
    """The target moves since the run: `name` committed on `release`."""
    git(repo, "switch", "-q", "release")
    (repo / name).write_text("x\n")
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", f"add {name}")
    git(repo, "switch", "-q", "main")
    return git(repo, "rev-parse", "release")


def _no_temp_worktree(repo: Path) -> bool:
    return ".integrate" not in git(repo, "worktree", "list")


def test_validation_gets_the_included_files_and_shared_folders(git_repo: Path) -> None:
    (git_repo / ".gitignore").write_text(".env\nnode_modules/\n")
    (git_repo / ".worktreeinclude").write_text(".env\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "local files")
    (git_repo / ".env").write_text("API_URL=http://localhost\n")  # ignored: only here
    (git_repo / "node_modules" / "pkg").mkdir(parents=True)
    (git_repo / "node_modules" / "pkg" / "index.js").write_text("module.exports = 1\n")
    root = _run(
        git_repo,
        "grep -q API_URL .env && test -f node_modules/pkg/index.js",
        {"share": ["node_modules"]},
    )
    release = git(git_repo, "rev-parse", "release")

    proc = cpo("integrate", str(root), "--into", "release", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "wave 1 validation: passed" in proc.stdout
    assert f"merged {INTEG} into release" in proc.stdout
    assert git(git_repo, "rev-parse", "release^1") == release
    # the merge commit holds the work, not the local files the validation was given
    files = git(git_repo, "ls-tree", "-r", "--name-only", "release").splitlines()
    assert "x.txt" in files and ".env" not in files and "node_modules" not in files
    # removing the temporary worktree removed its link, never the shared folder
    assert _no_temp_worktree(git_repo)
    assert (git_repo / "node_modules" / "pkg" / "index.js").exists()
    assert (git_repo / ".env").read_text() == "API_URL=http://localhost\n"


def test_spec_setup_readies_the_merge_result_before_its_validation(git_repo: Path) -> None:
    (git_repo / ".gitignore").write_text(".ready\n")
    root = _run(
        git_repo,
        'grep -q "ready for $CPO_SPEC_ID" .ready',
        {"setup": 'echo "ready for $CPO_SPEC_ID" > .ready'},
    )

    proc = cpo("integrate", str(root), "--into", "release", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "wave 1 validation: passed" in proc.stdout
    log = (root / "logs" / "integrate-setup.log").read_text()
    assert '[cpo] setup: $ echo "ready for $CPO_SPEC_ID" > .ready' in log
    assert "[cpo] setup: exit code 0" in log
    assert "- wave 1: passed" in (root / "integration-report.md").read_text()
    assert _no_temp_worktree(git_repo)


def test_a_failed_setup_is_said_and_leaves_the_target(git_repo: Path) -> None:
    setup = 'echo "token is $API_TOKEN"; test ! -f broken.txt'
    root = _run(git_repo, "true", {"setup": setup, "env": {"API_TOKEN": SECRET}})
    release = _commit_on_release(git_repo, "broken.txt")  # the setup fails on the merge

    proc = cpo("integrate", str(root), "--into", "release", cwd=git_repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "wave 1 validation" not in proc.stdout  # nothing validated an unready tree
    failed = f"setup command {setup!r} failed (exit code 1)"
    assert (
        f"not merged: the merge result could not be made ready to validate ({failed}); "
        "release is untouched"
    ) in proc.stdout
    log = root / "logs" / "integrate-setup.log"
    assert "next: fix the setup command that failed (the manifest's setup, or config " in (
        proc.stdout
    )
    assert f"(see {log}), then: cpo integrate {root} --into release" in proc.stdout
    assert git(git_repo, "rev-parse", "release") == release
    assert _no_temp_worktree(git_repo)

    text = (root / "integration-report.md").read_text()
    assert "- Result: not merged: the merge result could not be made ready" in text
    assert "not run: readying the merge result as `cpo run` readies" in text
    assert f"- Log: `{log}`" in text
    assert "token is ****" in text  # the setup's output, its secrets masked
    assert "- What to do: fix the setup command" in text and "--no-validate" in text
    assert SECRET not in text + log.read_text() + proc.stdout + proc.stderr

    # what the report says to do works: without the validation, it lands
    landed = cpo("integrate", str(root), "--into", "release", "--no-validate", cwd=git_repo)
    assert landed.returncode == 0, landed.stdout + landed.stderr
    assert git(git_repo, "rev-parse", "release^1") == release


def test_a_validation_that_hangs_times_out_as_a_failure(git_repo: Path) -> None:
    root = _run(git_repo, "if test -f slow.txt; then sleep 60; fi")
    release = _commit_on_release(git_repo, "slow.txt")  # the validation hangs on the merge
    (git_repo / ".cpo").mkdir()
    (git_repo / ".cpo" / "config.yaml").write_text("timeouts:\n  task: 1s\n")

    # Before the timeout was applied, this waited for the sleep (and the cpo() limit).
    proc = cpo("integrate", str(root), "--into", "release", cwd=git_repo, timeout=50)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "wave 1 validation: timed out after 1s (config timeouts.task)" in proc.stdout
    assert (
        "not merged: validation failed on the merge result (wave 1 timed out after 1s); "
        "release is untouched"
    ) in proc.stdout
    assert git(git_repo, "rev-parse", "release") == release
    assert _no_temp_worktree(git_repo)
    text = (root / "integration-report.md").read_text()
    assert "- wave 1: FAILED: timed out after 1s (config timeouts.task) in " in text
    assert "[cpo] validation timed out after 1.0 s" in text


def test_a_setup_that_hangs_times_out_as_a_failed_setup(git_repo: Path) -> None:
    setup = "if test -f slow.txt; then sleep 60; fi"
    root = _run(git_repo, "true", {"setup": setup})
    release = _commit_on_release(git_repo, "slow.txt")  # the setup hangs on the merge
    (git_repo / ".cpo").mkdir()
    (git_repo / ".cpo" / "config.yaml").write_text("timeouts:\n  task: 1s\n")

    proc = cpo("integrate", str(root), "--into", "release", cwd=git_repo, timeout=50)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"(setup command {setup!r} failed (timed out after 1s)); release is untouched" in (
        proc.stdout
    )
    assert git(git_repo, "rev-parse", "release") == release
    assert _no_temp_worktree(git_repo)
    assert "[cpo] setup: timed out after" in (root / "logs" / "integrate-setup.log").read_text()


PLAN = """---
validation: grep -q made .made
---
# Build plan

| Task | Stream | Name  | Status       |
|------|--------|-------|--------------|
| A1   | amd    | first | TASK:PENDING |

## Task A1: first
**Status**: TASK:PENDING
@script write amd.txt one
@script commit amd one
@script marker
"""


@pytest.mark.usefixtures("fake_claude")
def test_a_plan_files_merge_result_gets_the_configured_setup(git_repo: Path) -> None:
    # A plan file sets no setup of its own: its run readies the integration worktree from
    # the config (and `.worktreeinclude`), and so does its integrate.
    (git_repo / ".gitignore").write_text(".made\n")
    (git_repo / ".cpo").mkdir()
    (git_repo / ".cpo" / "config.yaml").write_text("worktree:\n  setup: echo made > .made\n")
    (git_repo / "PLAN.md").write_text(PLAN)
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "plan")
    plan = git_repo / "PLAN.md"
    proc = cpo("run", str(plan), cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    git(git_repo, "branch", "release", "main")

    merged = cpo("integrate", str(plan), "--into", "release", cwd=git_repo)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert "wave 1 validation: passed" in merged.stdout
    log = git_repo / "PLAN.cpo" / "logs" / "integrate-setup.log"
    assert "[cpo] setup: $ echo made > .made" in log.read_text()
