"""End-to-end scenarios any executor must pass, parametrized by the executor's name.

`run_with(executor, repo, root, *args)` runs `cpo run` with `--executor NAME` (and, for any
executor but local, a `file://` bare remote made beside the repository as `--remote`); an
executor with more to set up (a cluster) passes its own flags in `args`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import git
from tests.runkit import cpo, make_spec, report
from tests.workerkit import bare_remote

EXECUTORS = ["local", "subprocess"]  # the ones that need nothing more than this machine


def run_with(
    executor: str, repo: Path, root: Path, *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    flags = ["--executor", executor]
    if executor != "local":
        remote = repo.parent / "remote.git"
        url = remote.as_uri() if remote.exists() else bare_remote(repo)
        flags += ["--remote", url]
    return cpo("run", str(root), *flags, *args, cwd=repo, timeout=timeout)


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
