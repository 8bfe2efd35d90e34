"""Running `cpo worker run-task` against a real `file://` bare remote, as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cpo.executors.spec import AgentLaunch, AnyEvent, Exited, TaskLaunch, parse_event
from tests.conftest import git


def bare_remote(repo: Path) -> str:
    """A bare clone of `repo` beside it, as the `file://` URL a cluster would reach."""
    bare = repo.parent / "remote.git"
    git(repo.parent, "clone", "-q", "--bare", str(repo), str(bare))
    return f"file://{bare}"


def task_launch(repo: Path, remote: str, prompt: str, *, task_id: str = "task-001") -> TaskLaunch:
    """A launch of `prompt` from `repo`'s HEAD, its branch put on `remote` at that commit
    (what the coordinator does before it launches)."""
    start = git(repo, "rev-parse", "HEAD")
    branch = f"cpo-worker/TS-1/{task_id}/attempt-1"
    git(repo, "push", "-q", "--force", remote, f"{start}:refs/heads/{branch}")
    return TaskLaunch(
        spec_id="TS-1",
        task_id=task_id,
        wave=1,
        attempt=1,
        remote=remote,
        branch=branch,
        start_commit=start,
        agent=AgentLaunch(backend="claude"),
        prompt=prompt,
        env={"CPO_TASK_ID": task_id},
        timeout=120,
        grace=2,
    )


def start_worker(
    launch: TaskLaunch, tmp: Path, *, workdir: Path | None = None
) -> subprocess.Popen[str]:
    """`python -m cpo worker run-task -`, the launch on its stdin."""
    env = {**os.environ, **({"CPO_WORKER_DIR": str(workdir)} if workdir else {})}
    spec = tmp / f"launch-{launch.task_id}-{launch.attempt}.json"
    spec.write_text(launch.model_dump_json())
    with spec.open() as stdin:
        return subprocess.Popen(
            [sys.executable, "-m", "cpo", "worker", "run-task", "-"],
            cwd=tmp,
            env=env,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def events_of(stdout: str) -> list[AnyEvent]:
    events = [parse_event(line) for line in stdout.splitlines()]
    return [e for e in events if e is not None]


def exited_of(events: list[AnyEvent]) -> Exited:
    last = events[-1]
    assert isinstance(last, Exited), events
    return last
