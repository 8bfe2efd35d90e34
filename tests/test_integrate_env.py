"""`cpo integrate` validates with the environment `cpo run` gives its validations: the
spec's `env:` (read from the spec: the report does not keep it, its values may be
secrets), expanded, with cpo's run variables; and masks those values in what it writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import git
from tests.runkit import cpo, make_spec

SECRET = "s3cret-t0ken-value-42"
# Some work, so that the integration branch has something to merge.
WORK = "echo x > x.txt && git add x.txt && git commit -qm x && : > .claude-task-complete"
AGENT = ("--backend", "command", "--agent-command", WORK)


def _spec(repo: Path, validation: str) -> Path:
    return make_spec(
        repo,
        [{"task-001": "x"}],
        validation={1: validation},
        extra={"env": {"GREETING": "hello $WHO", "API_TOKEN": SECRET}},
    )


def test_integrate_validates_with_the_spec_env(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    check = (
        'test "$GREETING" = "hello world" && test "$CPO_SPEC_ID" = TS-0042 '
        '&& test "$CPO_INTEGRATION_BRANCH" = integration/TS-0042'
    )
    root = _spec(git_repo, check)
    monkeypatch.setenv("WHO", "world")
    proc = cpo("run", str(root), "--repair", "0", *AGENT, cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    merged = cpo("integrate", str(root), cwd=git_repo)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert "wave 1 validation: passed" in merged.stdout
    assert "- wave 1: passed" in (root / "integration-report.md").read_text()


def test_integrate_masks_the_spec_env_values_it_writes(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _spec(git_repo, 'echo "token is $API_TOKEN"; test -f never.txt')
    proc = cpo("run", str(root), "--repair", "0", *AGENT, cwd=git_repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr

    failed = cpo("integrate", str(root), "--force", cwd=git_repo)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    text = (root / "integration-report.md").read_text()
    assert "token is ****" in text  # the value was there, and is masked
    assert SECRET not in text + failed.stdout + failed.stderr


def test_a_spec_that_no_longer_loads_is_said_before_anything_is_merged(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _spec(git_repo, "true")
    assert cpo("run", str(root), *AGENT, cwd=git_repo).returncode == 0
    (root / "manifest.json").write_text("{ not json")
    git(git_repo, "commit", "-q", "-am", "broken manifest")

    refused = cpo("integrate", str(root), "--into", "main", cwd=git_repo)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "the spec does not load" in refused.stderr
    assert "--no-validate" in refused.stderr
    assert ".integrate" not in git(git_repo, "worktree", "list")
    skipped = cpo("integrate", str(root), "--no-validate", cwd=git_repo)
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
