"""Blocks of ports for running tasks (cpo.run.ports) and the task environment (cpo.run.taskenv)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cpo.run.ports import PortRange
from tests.conftest import git
from tests.runkit import cpo, make_spec, report

# Far from the default range (20000-29999) other runs on this machine use, and per
# test process, so parallel test sessions do not compete for the same blocks.
FIRST = 30000 + (os.getpid() % 200) * 10


def test_blocks_are_distinct_and_come_back_when_released() -> None:
    ports = PortRange(FIRST, FIRST + 99, 10)
    blocks = [ports.acquire() for _ in range(5)]
    assert all(b is not None for b in blocks)
    bases = [b.base for b in blocks if b is not None]
    assert len(set(bases)) == 5 and all(b % 10 == FIRST % 10 for b in bases)
    assert blocks[0] is not None
    blocks[0].release()
    again = ports.acquire()
    assert again is not None and again.base == bases[0]
    assert again.env() == {
        "CPO_PORT": str(bases[0]),
        "CPO_PORT_BASE": str(bases[0]),
        "CPO_PORT_COUNT": "10",
    }
    for block in [again, *blocks[1:]]:
        assert block is not None
        block.release()


def test_off_when_count_is_zero() -> None:
    assert PortRange(FIRST, FIRST + 99, 0).acquire() is None


def test_a_block_with_a_port_in_use_is_passed_over() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", FIRST + 3))
        server.listen()
        block = PortRange(FIRST, FIRST + 19, 10).acquire()
        assert block is not None and block.base == FIRST + 10
        block.release()


def test_another_process_block_is_never_shared_and_freed_when_it_dies() -> None:
    """Two cpo runs on one machine: no overlapping blocks; a killed one frees its block."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys
                from cpo.run.ports import PortRange
                block = PortRange({FIRST + 100}, {FIRST + 199}, 10).acquire()
                print(block.base, flush=True)
                sys.stdin.read()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        theirs = int(holder.stdout.readline())
        ours = PortRange(FIRST + 100, FIRST + 199, 10).acquire()
        assert ours is not None and ours.base != theirs
        ours.release()
    finally:
        holder.kill()
        holder.wait()
    mine = PortRange(theirs, theirs + 9, 10).acquire()
    assert mine is not None and mine.base == theirs


AGENT = """\
import os, socket, subprocess, time
server = socket.socket()
server.bind(("127.0.0.1", int(os.environ["CPO_PORT"])))  # fails if another task holds it
server.listen()
time.sleep(0.5)
names = ("CPO_PORT", "CPO_PORT_COUNT", "CPO_SPEC_ID", "CPO_INTEGRATION_BRANCH", "CPO_TASK_ID",
         "GREETING", "TASK_VAR")
out = "env-" + os.environ["CPO_TASK_ID"] + ".txt"
with open(out, "w") as fh:
    fh.writelines(f"{n}={os.environ.get(n)}\\n" for n in names)
print("token is", os.environ["API_TOKEN"])
subprocess.run(["git", "add", out], check=True)
subprocess.run(["git", "commit", "-q", "-m", "env"], check=True)
open(".claude-task-complete", "w").write("{}")
"""


def test_concurrent_tasks_serve_on_their_own_ports_with_the_task_env(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT)
    tasks = {f"task-{i:03d}": "serve" for i in range(1, 9)}
    root = make_spec(
        git_repo,
        [tasks],
        extra={"env": {"GREETING": "hello $WHO", "API_TOKEN": "s3cret-t0ken-value-42"}},
    )
    task_file = root / "tasks" / "task-003.md"
    task_file.write_text(task_file.read_text().replace("deps: []", "deps: []\nenv: {TASK_VAR: t3}"))
    git(git_repo, "commit", "-q", "-am", "task env")
    monkeypatch.setenv("WHO", "world")
    (git_repo / ".cpo").mkdir()
    (git_repo / ".cpo" / "config.yaml").write_text(
        f"ports: {{first: {FIRST + 200}, last: {FIRST + 299}, per_task: 10}}\n"
    )
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "config")
    proc = cpo(
        "run",
        str(root),
        "--max-concurrent",
        "8",
        "--backend",
        "command",
        "--agent-command",
        f"{sys.executable} {agent}",
        cwd=git_repo,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    seen: dict[str, dict[str, str]] = {}
    for tid, rec in report(root)["tasks"].items():
        text = (Path(rec["worktree"]) / f"env-{tid}.txt").read_text()
        seen[tid] = dict(line.split("=", 1) for line in text.splitlines())
        log = (root / "logs" / f"{tid}.log").read_text()
        assert "s3cret-t0ken-value-42" not in log and "token is ****" in log
    assert len({env["CPO_PORT"] for env in seen.values()}) == 8
    first = seen["task-003"]
    assert first["CPO_SPEC_ID"] == "TS-0042"
    assert first["CPO_INTEGRATION_BRANCH"] == "integration/TS-0042"
    assert first["CPO_TASK_ID"] == "task-003" and first["CPO_PORT_COUNT"] == "10"
    assert first["GREETING"] == "hello world" and first["TASK_VAR"] == "t3"
    assert seen["task-001"]["TASK_VAR"] == "None"


def test_ports_config_that_cannot_hold_a_block_is_refused(git_repo: Path) -> None:
    (git_repo / ".cpo").mkdir()
    config = git_repo / ".cpo" / "config.yaml"
    config.write_text("ports: {per_task: 20, first: 30000, last: 30010}\n")
    proc = cpo("config", "show", cwd=git_repo)
    assert proc.returncode == 2
    assert "a block of 20 ports (ports.per_task) does not fit" in proc.stdout + proc.stderr
    config.write_text("ports: {first: 80}\n")
    proc = cpo("config", "show", cwd=git_repo)
    assert proc.returncode == 2 and "ports.first" in proc.stdout + proc.stderr


def test_wave_validation_gets_the_spec_env(git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A validation runs in the integration worktree with the spec's `env:` (its `$NAME`s
    expanded) and cpo's run variables, as the integration set-up does."""
    root = make_spec(
        git_repo,
        [{"task-001": "x"}],
        validation={1: 'test "$GREETING" = "hello world" && test "$CPO_SPEC_ID" = TS-0042'},
        extra={"env": {"GREETING": "hello $WHO"}},
    )
    monkeypatch.setenv("WHO", "world")
    agent = ("--backend", "command", "--agent-command", ": > .claude-task-complete")
    proc = cpo("run", str(root), "--repair", "0", *agent, cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert report(root)["waves"][0]["validation_exit_code"] == 0
