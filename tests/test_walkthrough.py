"""A run walked through every state its report can be in, doing at each one exactly what
`cpo status` (or `cpo run`) says to do next, in a repository whose path has a space.

planned → (dry run) → failed → partially done (--wave) → running → interrupted →
completed → integrated → cleaned.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.conftest import git
from tests.runkit import make_spec

_COMMAND = re.compile(r"(?:^|\s)((?:cpo|git) .*)$")


def command_of(step: str) -> list[str]:
    """The command a next step ends with, split as the shell would split it."""
    match = _COMMAND.search(step)
    assert match, f"no command in next step: {step!r}"
    argv = shlex.split(match.group(1))
    return [sys.executable, "-m", "cpo", *argv[1:]] if argv[0] == "cpo" else argv


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120)


def status(root: Path, cwd: Path) -> dict[str, Any]:
    out = run([sys.executable, "-m", "cpo", "status", str(root), "--json"], cwd)
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def next_of(data: dict[str, Any]) -> str:
    step = data["live"]["next_step"] if "live" in data else data["next_step"]
    assert isinstance(step, str), data
    return step


def wait_for(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


def test_every_state_says_a_next_step_that_works(tmp_path: Path, fake_claude: Path) -> None:
    repo = tmp_path / "my repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("x\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    go = tmp_path / "go"
    ok = "@script write {f} {t}\n@script commit add {f}\n@script marker"
    root = make_spec(
        repo,
        [
            {"task-001": ok.format(f="a.txt", t="a"), "task-002": "@script exit 3"},
            {"task-003": ok.format(f="c.txt", t="c")},
        ],
        deps={"task-003": ["task-001"]},
        validation={1: "test -s a.txt", 2: f"test -e {go} || sleep 60"},
    )
    assert " " in str(root)

    # planned: no run yet; the dry run says how to start it, and starts it so
    planned = json.loads(
        run([sys.executable, "-m", "cpo", "status", str(root), "--json"], repo).stdout
    )
    assert planned["exit_code"] == 2 and command_of(next_of(planned))[3:] == ["run", str(root)]
    dry = run(
        [sys.executable, "-m", "cpo", "run", str(root), "--dry-run", "--wave", "1", "--json"], repo
    )
    assert dry.returncode == 0, dry.stderr
    first = run(command_of(next_of(json.loads(dry.stdout))), repo)

    # failed: task-002 exited 3; the step names its log, and --retry-failed after the fix
    assert first.returncode == 1, first.stdout + first.stderr
    failed = status(root, repo)
    assert failed["status"] == "failed"
    step = next_of(failed)
    assert "task-002" in step and "--retry-failed" in step
    log = shlex.split(step.split("see ", 1)[1])[0]
    assert Path(log).is_file() and "exit" in Path(log).read_text()
    (root / "tasks" / "task-002.md").write_text(
        (root / "tasks" / "task-002.md")
        .read_text()
        .replace("@script exit 3", ok.format(f="b.txt", t="b"))
    )
    retried = run(command_of(step), repo)
    assert retried.returncode == 0, retried.stdout + retried.stderr

    # partially done: wave 1 merged and validated, wave 2 still to run
    partial = status(root, repo)
    assert [w["status"] for w in partial["waves"]] == ["completed", "pending"]
    step = next_of(partial)
    assert command_of(step)[3:] == ["run", str(root), "--wave", "2"]

    # running: wave 2 validation waits for `go`; the step watches the run
    runner = subprocess.Popen(
        command_of(step), cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(
            lambda: (
                (root / "report.json").exists()
                and json.loads((root / "report.json").read_text())["waves"][1]["status"]
                == "validating"
            )
        )
        running = status(root, repo)
        assert running["live"]["state"] == "running"
        watch_argv = command_of(next_of(running))
        assert watch_argv[3:] == ["status", str(root), "--watch"]
        watcher = subprocess.Popen(
            watch_argv, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        runner.send_signal(signal.SIGINT)
        assert runner.wait(60) == 130
        watched, _ = watcher.communicate(timeout=60)
        assert "interrupted" in watched.splitlines()[0] + watched  # it followed the run to its end
    finally:
        if runner.poll() is None:
            runner.kill()

    # interrupted: continue with --resume (once the validation can pass)
    interrupted = status(root, repo)
    assert interrupted["status"] == "interrupted"
    go.write_text("")
    resumed = run(command_of(next_of(interrupted)), repo)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr

    # completed: integrate; main is checked out here, so it prints the git command to run
    completed = status(root, repo)
    assert completed["status"] == "completed"
    integrated = run(command_of(next_of(completed)), repo)
    assert integrated.returncode == 0, integrated.stdout + integrated.stderr
    merge = next(
        line.strip() for line in integrated.stdout.splitlines() if line.startswith("  git")
    )
    assert run(shlex.split(merge), repo).returncode == 0
    assert (repo / "c.txt").exists()

    # integrated: what is left is cpo's worktrees and branches
    after = status(root, repo)
    assert "integrated into main" in after["live"]["message"]
    assert "cpo integrate" not in next_of(after)
    cleaned = run(command_of(next_of(after)), repo)
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr

    # cleaned: nothing left to do, and nothing says otherwise
    final = status(root, repo)
    assert final["live"]["next_step"] is None
    assert "cleaned up" in final["live"]["message"]
    assert git(repo, "branch", "--list") == "* main"
    text = run([sys.executable, "-m", "cpo", "status", str(root)], repo).stdout
    assert "next:" not in text and "cleaned up" in text
    assert os.environ.get("CPO_CLAUDE_BIN") is None
