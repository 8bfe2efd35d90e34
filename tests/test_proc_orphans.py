"""Nothing a run starts outlives it: an agent's `setsid` children (after a successful run,
after Ctrl-C, after kill -9 of cpo) and wave validations (after kill -9 of cpo).

Processes are real; each escapee writes its own pid to a file outside the worktree.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cpo.orphans import Adopter, children
from tests.runkit import cpo, make_spec, report

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def escapee(pidfile: Path) -> str:
    """Shell that starts `sleep 300` in a new session (out of the agent's process group)."""
    return f"setsid sh -c 'echo $$ > {pidfile}; exec sleep 300' </dev/null >/dev/null 2>&1 &"


COMMIT = (
    'echo "$CPO_TASK_ID" > "$CPO_TASK_ID.txt" && git add -A && git commit -qm work && '
    ": > .claude-task-complete"
)


def read_pid(pidfile: Path) -> int:
    assert wait_until(lambda: pidfile.exists() and pidfile.read_text().strip() != "")
    return int(pidfile.read_text())


def start_cpo(root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cpo", "run", str(root), *args],
        cwd=root.parent.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_adopter_kills_and_reaps_a_grandchild_that_escaped(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    adopter = Adopter()
    assert adopter.active
    subprocess.run(["sh", "-c", escapee(pidfile)], check=True)
    pid = read_pid(pidfile)
    # Its parent exited: it was re-parented to us (the subreaper), not to init.
    assert wait_until(lambda: pid in children())
    assert adopter.finish() >= 1
    assert not alive(pid) and pid not in children()


def test_agent_setsid_child_gone_after_a_successful_run(git_repo: Path, tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    root = make_spec(git_repo, [{"task-001": "x"}])
    agent = f"{escapee(pidfile)} {COMMIT}"
    proc = cpo("run", str(root), "--backend", "command", "--agent-command", agent, cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    child = read_pid(pidfile)
    assert wait_until(lambda: not alive(child), timeout=5), "the agent's setsid child lives on"


def test_agent_setsid_child_gone_after_ctrl_c(git_repo: Path, tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    root = make_spec(git_repo, [{"task-001": "x"}])
    proc = start_cpo(
        root, "--backend", "command", "--agent-command", f"{escapee(pidfile)} sleep 300"
    )
    child = read_pid(pidfile)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    assert wait_until(lambda: not alive(child), timeout=5), "the agent's setsid child lives on"


def test_validation_and_setsid_child_gone_after_kill_9(git_repo: Path, tmp_path: Path) -> None:
    validation_pid, child_pid = tmp_path / "validation.pid", tmp_path / "child.pid"
    root = make_spec(
        git_repo,
        [{"task-001": "x"}],
        validation={1: f"echo $$ > {validation_pid}; exec sleep 300"},
    )
    agent = f"{escapee(child_pid)} {COMMIT}"
    proc = start_cpo(root, "--backend", "command", "--agent-command", agent)
    validation, child = read_pid(validation_pid), read_pid(child_pid)
    assert report(root)["waves"][0]["status"] == "validating"
    proc.kill()
    proc.communicate()
    # The watchdog sees cpo gone: what it was told about and what carries the run's tag.
    assert wait_until(lambda: not alive(validation), timeout=15), "the validation lives on"
    assert wait_until(lambda: not alive(child), timeout=15), "the agent's setsid child lives on"
    assert os.environ.get("CPO_RUN_ID") is None  # the tag is only in what cpo started
