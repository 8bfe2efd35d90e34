"""End-to-end scenarios any executor must pass, parametrized by the executor's name.

`run_with(executor, repo, root, *args)` runs `cpo run` with `--executor NAME` (and, for any
executor but local, a `file://` bare remote made beside the repository as `--remote`); an
executor with more to set up (a cluster) passes its own flags in `args`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import git
from tests.runkit import cpo, make_spec, report
from tests.workerkit import bare_remote

EXECUTORS = ["local", "subprocess"]  # the ones that need nothing more than this machine


def executor_flags(executor: str, repo: Path) -> list[str]:
    """`--executor NAME`, and for any but local `--remote` a bare clone beside `repo`."""
    flags = ["--executor", executor]
    if executor != "local":
        remote = repo.parent / "remote.git"
        flags += ["--remote", remote.as_uri() if remote.exists() else bare_remote(repo)]
    return flags


def agents_dir(executor: str, repo: Path) -> Path:
    """Where the executor's agents work: the worktrees, or the workers' clones (the
    `CPO_WORKER_DIR` that `worker_env` sets)."""
    return repo.parent / ("workspaces" if executor == "local" else "worker-clones")


def worker_env(repo: Path) -> dict[str, str]:
    return {"CPO_WORKER_DIR": str(repo.parent / "worker-clones")}


def run_with(
    executor: str, repo: Path, root: Path, *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    flags = executor_flags(executor, repo)
    return cpo("run", str(root), *flags, *args, cwd=repo, env=worker_env(repo), timeout=timeout)


def no_marker_records(
    executors: tuple[str, ...], git_repo: Path, tmp_path: Path
) -> list[dict[str, Any]]:
    """The task record of an agent that writes a file and ends without the marker, once per
    executor, each in its own clone (no nudge: the failure itself is compared;
    test_worker_parity covers nudges)."""
    records = []
    for executor in executors:
        repo = tmp_path / executor / "repo"
        repo.parent.mkdir()
        git(tmp_path, "clone", "-q", str(git_repo), str(repo))
        root = make_spec(repo, [{"task-001": "@script write src/a.txt alpha\n@script text done"}])
        proc = run_with(executor, repo, root, "--retries", "0", "--nudges", "0")
        assert proc.returncode == 1, proc.stdout + proc.stderr
        records.append(report(root)["tasks"]["task-001"])
    return records


def start_with(executor: str, repo: Path, root: Path, *args: str) -> subprocess.Popen[str]:
    """`cpo run` with the executor, in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "cpo", "run", str(root), *executor_flags(executor, repo), *args],
        cwd=repo,
        env={**os.environ, **worker_env(repo)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def child_pid(executor: str, repo: Path) -> int | None:
    """The pid in the `.child-pid` a running `@script spawn-child` agent wrote, if any."""
    found = list(agents_dir(executor, repo).glob("**/.child-pid"))
    return int(found[0].read_text()) if found and found[0].read_text() else None


def two_wave_spec(repo: Path) -> Path:
    """Wave 1 writes a.txt and b.txt; wave 2's task requires both (merged work)."""
    return make_spec(
        repo,
        [
            {
                "task-001": "@script write src/a.txt alpha\n@script commit add a\n@script marker",
                "task-002": "@script write src/b.txt beta\n@script commit add b\n@script marker",
            },
            {
                "task-003": "@script require src/a.txt\n@script require src/b.txt\n"
                "@script write src/c.txt gamma\n@script commit add c\n@script marker"
            },
        ],
        deps={"task-003": ["task-001", "task-002"]},
        validation={1: "test -f src/a.txt && test -f src/b.txt", 2: "test -f src/c.txt"},
    )


def check_two_waves(executor: str, repo: Path, *args: str) -> dict[str, Any]:
    """Run the two-wave spec; dependents saw merged work; every record is complete. The
    report, for more checks."""
    root = two_wave_spec(repo)
    proc = run_with(executor, repo, root, *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = report(root)
    assert data["status"] == "completed"
    tasks = data["tasks"]
    assert [t["status"] for t in tasks.values()] == ["completed"] * 3
    assert all(t["merged"] and t["commits"] == 1 for t in tasks.values())
    assert all(t["session_id"] and t["marker"]["task_completed"] for t in tasks.values())
    files = git(repo, "ls-tree", "-r", "--name-only", "integration/TS-0042").splitlines()
    assert {"src/a.txt", "src/b.txt", "src/c.txt"} <= set(files)
    assert ".claude-task-complete" not in files
    assert [w["validation_exit_code"] for w in data["waves"]] == [0, 0]
    log = (root / "logs" / "task-003.log").read_text()
    assert "Write src/c.txt" in log or "src/c.txt" in log
    return data
