"""The same end-to-end runs with every executor that needs only this machine: the local
one (worktrees here) and `subprocess` (each attempt by `cpo worker run-task` through a
`file://` bare remote, as on a cluster). Task records must not depend on the executor."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from tests.conftest import git
from tests.executorkit import (
    EXECUTORS,
    agents_dir,
    check_two_waves,
    child_pid,
    no_marker_records,
    run_with,
    start_with,
)
from tests.runkit import cpo, make_spec, report
from tests.test_recovery import agent_pids, alive, wait_for

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
    records = no_marker_records(EXECUTORS, git_repo, tmp_path)
    local, remote = ({k: r[k] for k in SAME} for r in records)
    assert local == remote
    assert local["reason"] == "no_completion_marker" and local["leftovers_committed"]
    for rec in records:
        assert "[cpo] committed changes the agent left uncommitted" in Path(rec["log"]).read_text()


HANG = "@script spawn-child 300\n@script hang"


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_timeout_leaves_no_process_behind(executor: str, git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": HANG}])
    proc = run_with(executor, git_repo, root, "--timeout", "3s", "--retries", "0")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rec = report(root)["tasks"]["task-001"]
    assert (rec["status"], rec["reason"]) == ("failed", "timeout")
    assert agent_pids(agents_dir(executor, git_repo)) == []


@pytest.mark.parametrize("executor", EXECUTORS)
def test_ctrl_c_stops_every_agent(executor: str, git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": HANG, "task-002": HANG}])
    proc = start_with(executor, git_repo, root)
    wait_for(lambda: child_pid(executor, git_repo) is not None)
    child = child_pid(executor, git_repo)
    assert child is not None
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, out + err
    data = report(root)
    assert data["status"] == "interrupted"
    assert {t["status"] for t in data["tasks"].values()} == {"interrupted"}
    wait_for(lambda: not alive(child), timeout=15)
    assert agent_pids(agents_dir(executor, git_repo)) == []


def test_kill_9_then_resume_starts_a_new_attempt_when_the_worker_is_gone(git_repo: Path) -> None:
    """The subprocess executor cannot re-attach (its workers stop with their parent): the
    lost attempt is recorded as such, and --resume runs a new one."""
    executor = "subprocess"
    root = make_spec(git_repo, [{"task-001": HANG}])
    proc = start_with(executor, git_repo, root)
    wait_for(lambda: child_pid(executor, git_repo) is not None)
    child = child_pid(executor, git_repo)
    assert child is not None
    proc.kill()
    proc.communicate()
    # The worker sees its parent gone and stops its agent.
    wait_for(lambda: not alive(child), timeout=30)
    wait_for(lambda: agent_pids(agents_dir(executor, git_repo)) == [], timeout=30)
    task_file = root / "tasks" / "task-001.md"
    task_file.write_text(
        task_file.read_text().replace(
            HANG, "@script write a.txt x\n@script commit a\n@script marker"
        )
    )
    git(git_repo, "commit", "-qam", "finish task-001")
    resumed = run_with(executor, git_repo, root, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    attempts = report(root)["tasks"]["task-001"]["attempts"]
    assert [(a["status"], a["reason"]) for a in attempts] == [
        ("interrupted", "interrupted"),
        ("completed", None),
    ]
    assert attempts[0]["error"] == "stopped with the coordinator"
    assert [a["handle"]["id"] for a in attempts] == [
        "TS-0042/task-001/attempt-1",
        "TS-0042/task-001/attempt-2",
    ]


def test_an_unreachable_remote_stops_the_run_at_preflight(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": "@script marker"}])
    proc = cpo("run", str(root), "--executor", "subprocess", "--remote", "nowhere", cwd=git_repo)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "--remote nowhere: no git remote of that name" in proc.stderr
    assert not (root / "report.json").exists()


def test_a_remote_with_a_relative_path_is_the_repositorys(git_repo: Path, tmp_path: Path) -> None:
    git(tmp_path, "clone", "-q", "--bare", str(git_repo), "origin.git")
    git(git_repo, "remote", "add", "origin", "../origin.git")
    root = make_spec(
        git_repo, [{"task-001": "@script write a.txt x\n@script commit a\n@script marker"}]
    )
    proc = cpo("run", str(root), "--executor", "subprocess", cwd=root)  # origin, from elsewhere
    assert proc.returncode == 0, proc.stdout + proc.stderr
    branch = "refs/heads/cpo-worker/TS-0042/task-001/attempt-1"
    assert (
        git(tmp_path / "origin.git", "rev-parse", branch)
        == report(root)["tasks"]["task-001"]["head"]
    )
