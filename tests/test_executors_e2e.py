"""The same end-to-end runs with every executor that needs only this machine: the local
one (worktrees here) and `subprocess` (each attempt by `cpo worker run-task` through a
`file://` bare remote, as on a cluster). Task records must not depend on the executor."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import git
from tests.executorkit import EXECUTORS, check_two_waves, run_with
from tests.runkit import make_spec, report

pytestmark = [
    pytest.mark.usefixtures("fake_claude"),
    pytest.mark.skipif(sys.platform != "linux", reason="the worker reads /proc"),
]

# What an attempt's record says whichever executor ran it (times, ids and paths aside).
SAME = ("status", "reason", "error", "commits", "files_changed", "merged", "marker")
SAME += ("leftovers_committed", "warnings", "exit_code", "turns", "cost_usd")


@pytest.mark.parametrize("executor", EXECUTORS)
def test_two_waves_dependents_see_merged_work(executor: str, git_repo: Path) -> None:
    data = check_two_waves(executor, git_repo)
    handles = [a.get("handle") for t in data["tasks"].values() for a in t["attempts"]]
    if executor == "local":
        assert handles == [None] * 3
    else:
        assert {h["executor"] for h in handles} == {executor}
        assert not Path(data["workspace_root"], "TS-0042", "task-001").exists()


def test_a_task_without_the_marker_has_the_same_record_on_both(
    git_repo: Path, tmp_path: Path
) -> None:
    prompt = "@script write src/a.txt alpha\n@script text done"
    records = []
    for executor in EXECUTORS:
        repo = tmp_path / executor / "repo"
        repo.parent.mkdir()
        git(tmp_path, "clone", "-q", str(git_repo), str(repo))
        root = make_spec(repo, [{"task-001": prompt}])
        proc = run_with(executor, repo, root, "--retries", "0")
        assert proc.returncode == 1, proc.stdout + proc.stderr
        records.append(report(root)["tasks"]["task-001"])
    local, remote = ({k: r[k] for k in SAME} for r in records)
    assert local == remote
    assert local["reason"] == "no_completion_marker" and local["leftovers_committed"]
    for rec in records:
        assert "[cpo] committed changes the agent left uncommitted" in Path(rec["log"]).read_text()
