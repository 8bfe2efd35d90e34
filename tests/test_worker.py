"""`cpo worker run-task`: real git (a `file://` bare remote), a real worker process, the
scripted claude on PATH; what a cluster job's entrypoint runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cpo.executors.spec import AgentLaunch, AgentLine, Started
from tests.conftest import git
from tests.runkit import cpo, make_spec, report
from tests.test_recovery import agent_pids, alive, wait_for
from tests.workerkit import bare_remote, events_of, exited_of, start_worker, task_launch

pytestmark = [
    pytest.mark.usefixtures("fake_claude"),
    pytest.mark.skipif(sys.platform != "linux", reason="reads /proc"),
]

OK = "@script write src/a.txt alpha\n@script commit add a\n@script marker"


def test_the_worker_completes_a_task_and_pushes_its_branch(git_repo: Path, tmp_path: Path) -> None:
    remote = bare_remote(git_repo)
    launch = task_launch(git_repo, remote, OK)
    proc = start_worker(launch, tmp_path, workdir=tmp_path / "wd")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    events = events_of(out)
    assert len(events) == len(out.splitlines())  # every line is an event
    assert isinstance(events[0], Started)
    assert any(isinstance(e, AgentLine) and e.actions for e in events)
    exited = exited_of(events)
    assert exited.ok and exited.reason is None
    assert exited.commits == 1 and exited.files == ("src/a.txt",)
    assert exited.marker is not None and exited.marker["task_completed"] is True
    assert exited.session_id and exited.cost_usd is not None
    bare = Path(remote.removeprefix("file://"))
    assert git(bare, "rev-parse", f"refs/heads/{launch.branch}") == exited.head
    assert git(bare, "show", f"{exited.head}:src/a.txt") == "alpha"
    tree = git(bare, "ls-tree", "-r", "--name-only", exited.head).splitlines()
    assert ".claude-task-complete" not in tree
    assert not list((tmp_path / "wd").iterdir())  # its clone is removed


def test_no_marker_gives_the_same_verdict_and_record_as_local(
    git_repo: Path, tmp_path: Path
) -> None:
    prompt = "@script write src/a.txt alpha\n@script text done"
    root = make_spec(git_repo, [{"task-001": prompt}])
    # (no nudge: a worker does not resume its agent's session yet)
    local = cpo("run", str(root), "--retries", "0", "--nudges", "0", cwd=git_repo)
    assert local.returncode == 1, local.stdout + local.stderr
    rec = report(root)["tasks"]["task-001"]
    launch = task_launch(git_repo, bare_remote(git_repo), prompt)
    proc = start_worker(launch, tmp_path)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    exited = exited_of(events_of(out))
    assert (exited.ok, exited.reason, exited.error) == (False, rec["reason"], rec["error"])
    assert exited.reason == "no_completion_marker"
    assert (exited.commits, list(exited.files)) == (rec["commits"], rec["files_changed"])
    assert exited.leftovers is rec["leftovers_committed"] is True
    # Its work is pushed all the same: never lost.
    bare = Path(launch.remote.removeprefix("file://"))
    assert git(bare, "rev-parse", f"refs/heads/{launch.branch}") == exited.head


def _running_agent(proc: subprocess.Popen[str]) -> Started:
    """The worker's `started` event, once its agent has printed something."""
    assert proc.stdout is not None
    started = None
    for line in proc.stdout:
        event = events_of(line)
        if event and isinstance(event[0], Started):
            started = event[0]
        if event and isinstance(event[0], AgentLine) and started is not None:
            return started
    raise AssertionError("the agent never started: " + (proc.stderr.read() if proc.stderr else ""))


HANG = "@script write src/a.txt alpha\n@script spawn-child 300\n@script hang"


def test_sigterm_to_the_worker_leaves_no_agent_behind(git_repo: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "wd"
    launch = task_launch(git_repo, bare_remote(git_repo), HANG)
    proc = start_worker(launch, tmp_path, workdir=workdir)
    started = _running_agent(proc)
    wait_for(lambda: (Path(started.workdir) / ".child-pid").exists())
    child = int((Path(started.workdir) / ".child-pid").read_text())
    assert agent_pids(workdir)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130
    exited = exited_of(events_of(out))
    assert exited.reason == "interrupted"
    assert not alive(child)
    assert not agent_pids(workdir)
    # What the agent wrote is committed and pushed: an interrupted attempt loses nothing.
    bare = Path(launch.remote.removeprefix("file://"))
    assert git(bare, "show", f"refs/heads/{launch.branch}:src/a.txt") == "alpha"


PARENT = """
import subprocess, sys
with open(sys.argv[2], "w") as out:
    child = subprocess.Popen(
        [sys.executable, "-m", "cpo", "worker", "run-task", sys.argv[1]], stdout=out
    )
    print(child.pid, flush=True)
    child.wait()
"""


def test_the_worker_stops_its_agent_when_its_parent_dies(git_repo: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "wd"
    launch = task_launch(git_repo, bare_remote(git_repo), HANG)
    spec, events_file = tmp_path / "launch.json", tmp_path / "events.jsonl"
    spec.write_text(launch.model_dump_json())
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(spec), str(events_file)],
        cwd=tmp_path,
        env={**os.environ, "CPO_WORKER_DIR": str(workdir)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    worker = int(parent.stdout.readline())
    wait_for(lambda: '"agent_event"' in events_file.read_text())
    assert agent_pids(workdir)
    parent.kill()
    parent.wait()
    wait_for(lambda: not alive(worker), timeout=60)
    assert not agent_pids(workdir)
    last = json.loads(events_file.read_text().splitlines()[-1])
    assert (last["type"], last["reason"]) == ("exited", "interrupted")


def test_a_bad_launch_is_one_line_per_problem(tmp_path: Path) -> None:
    spec = tmp_path / "launch.json"
    spec.write_text(json.dumps({"version": 1, "task_id": "t", "attempt": 0, "surprise": 1}))
    proc = cpo("worker", "run-task", str(spec), cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"{spec}: attempt: Input should be greater than or equal to 1" in proc.stderr
    assert f"{spec}: surprise: Extra inputs are not permitted" in proc.stderr
    assert f"{spec}: spec_id: Field required" in proc.stderr
    assert proc.stdout == ""


def test_a_launch_whose_branch_moved_fails_with_a_verdict(git_repo: Path, tmp_path: Path) -> None:
    launch = task_launch(git_repo, bare_remote(git_repo), OK)
    moved = launch.model_copy(update={"start_commit": "1" * 40})
    proc = start_worker(moved, tmp_path)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 3
    exited = exited_of(events_of(out))
    assert exited.reason == "git_error"
    assert "another attempt moved it" in (exited.error or "")
    assert not [e for e in events_of(out) if isinstance(e, AgentLine)]


def test_the_push_never_overwrites_a_branch_someone_else_moved(
    git_repo: Path, tmp_path: Path
) -> None:
    """--force-with-lease against the start commit: another worker's push (here, the
    agent's own, standing in for a duplicate attempt) is kept, and the task fails."""
    launch = task_launch(git_repo, bare_remote(git_repo), "")
    other = (
        "git commit -q --allow-empty -m other && "
        f"git push -q origin HEAD:refs/heads/{launch.branch} && "
        "git reset -q --hard HEAD~1 && git commit -q --allow-empty -m mine && "
        "echo '{}' > .claude-task-complete"
    )
    agent = AgentLaunch(backend="command", command=other)
    proc = start_worker(launch.model_copy(update={"agent": agent}), tmp_path)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    exited = exited_of(events_of(out))
    assert (exited.ok, exited.reason) == (False, "push_failed")
    assert f"could not push {launch.branch}" in (exited.error or "")
    bare = Path(launch.remote.removeprefix("file://"))
    assert git(bare, "log", "-1", "--format=%s", f"refs/heads/{launch.branch}") == "other"
