"""Nothing `cpo integrate` starts outlives it: the validation of the merge result (and
what it started, even out of its group) is stopped when cpo is killed (kill -9: the
watchdog) or interrupted (Ctrl-C: the target stays untouched, exit 130).

Processes are real; each writes its own pid to a file outside the worktree.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import git
from tests.runkit import cpo, make_spec
from tests.test_proc_orphans import alive, escapee, read_pid, wait_until

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")

WORK = "echo x > x.txt && git add x.txt && git commit -qm x && : > .claude-task-complete"


def _run(repo: Path, hang: Path, validation: str) -> Path:
    """A completed run whose validation passed at once, and a `release` branch at main:
    the validation hangs only once `hang` exists (under `cpo integrate`)."""
    check = f"if [ -e {hang} ]; then {validation}; fi"
    root = make_spec(repo, [{"task-001": "x"}], validation={1: check})
    proc = cpo("run", str(root), "--backend", "command", "--agent-command", WORK, cwd=repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    git(repo, "branch", "release", "main")
    hang.touch()
    return root


def _integrate(root: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cpo", "integrate", str(root), "--into", "release"],
        cwd=root.parent.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextlib.contextmanager
def _reaped(*pidfiles: Path) -> Iterator[None]:
    """A failing test leaves no `sleep 300` behind."""
    try:
        yield
    finally:
        for pidfile in pidfiles:
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pidfile.read_text()), signal.SIGKILL)


def test_validation_gone_after_kill_9_of_integrate(git_repo: Path, tmp_path: Path) -> None:
    pidfile = tmp_path / "validation.pid"
    root = _run(git_repo, tmp_path / "hang", f"echo $$ > {pidfile}; exec sleep 300")
    with _reaped(pidfile):
        proc = _integrate(root)
        validation = read_pid(pidfile)
        proc.kill()
        proc.communicate()
        # The watchdog sees cpo gone and stops the group it was told about.
        assert wait_until(lambda: not alive(validation), timeout=15), "the validation lives on"


def test_ctrl_c_stops_the_validation_and_leaves_the_target(git_repo: Path, tmp_path: Path) -> None:
    pidfile, child_pid = tmp_path / "validation.pid", tmp_path / "child.pid"
    validation = f"{escapee(child_pid)} echo $$ > {pidfile}; exec sleep 300"
    root = _run(git_repo, tmp_path / "hang", validation)
    release = git(git_repo, "rev-parse", "release")
    with _reaped(pidfile, child_pid):
        proc = _integrate(root)
        pid, child = read_pid(pidfile), read_pid(child_pid)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, out + err
        assert wait_until(lambda: not alive(pid), timeout=15), "the validation lives on"
        # What left the validation's group, found by the run's tag.
        assert wait_until(lambda: not alive(child), timeout=15), "its setsid child lives on"
    assert git(git_repo, "rev-parse", "release") == release
    assert "integrate" not in git(git_repo, "worktree", "list")
    line = (
        "not merged: interrupted while validating the merge result; release is untouched; "
        f"to integrate, run again: cpo integrate {root}"
    )
    assert line in out and err == "", out + err
    written = (root / "integration-report.md").read_text()
    assert f"- Result: {line}" in written and "interrupted: its commands were stopped" in written
