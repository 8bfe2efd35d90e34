"""The integration worktree's folder deleted by hand between two runs: the next run
(`--retry-failed`, `--resume`) registers it again and merges into it. The set-up decides
from the lists git gave its checks (cpo.run.worktrees.Seen), and only prunes when a
worktree's folder is gone: this is the case that needs the prune."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import git
from tests.runkit import cpo, make_spec, report

# Fails (no marker) until the flag file exists.
AGENT = (
    '[ -f "$FLAG" ] || [ "$CPO_TASK_ID" = task-001 ] || exit 3; '
    'printf x > "f-$CPO_TASK_ID.txt" && git add -A && git commit -qm "$CPO_TASK_ID" '
    "&& : > .claude-task-complete"
)


def test_a_deleted_integration_worktree_is_made_again(git_repo: Path, tmp_path: Path) -> None:
    root = make_spec(git_repo, [{"task-001": "one"}, {"task-002": "two"}])
    flag = tmp_path / "flag"
    args = ("--backend", "command", "--agent-command", AGENT)
    env = {"FLAG": str(flag)}
    first = cpo("run", str(root), *args, cwd=git_repo, env=env)
    assert first.returncode != 0, first.stdout + first.stderr
    integration = Path(report(root)["integration_worktree"])
    assert (integration / "f-task-001.txt").is_file()
    shutil.rmtree(integration)  # by hand: git still lists it, its folder is gone

    flag.touch()
    again = cpo("run", str(root), *args, "--retry-failed", cwd=git_repo, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert report(root)["status"] == "completed"
    files = git(git_repo, "ls-tree", "--name-only", "integration/TS-0042").split()
    assert {"f-task-001.txt", "f-task-002.txt"} <= set(files)
    assert (integration / "f-task-002.txt").is_file()
