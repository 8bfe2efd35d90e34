"""A kill of cpo after any of its git steps, then `--resume`: a correct result every time.

cpo is made to SIGKILL itself right after its Nth git call (the test hook
CPO_TEST_KILL_AFTER_GIT_CALL in cpo/gitrun.py), for N = 1, 2, ... until a run ends before
its Nth call. After each kill, `--resume` must merge every task exactly once, with the
right files, and no branch may hold a commit that deletes files (what committing an
empty, half-made worktree as "uncommitted changes" would do).
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from cpo.gitrun import KILL_AFTER_GIT_CALL
from tests.conftest import git
from tests.runkit import cpo, make_spec, report

AGENT = (
    'printf "%s\\n" "$CPO_TASK_ID" > "$CPO_TASK_ID.txt" && git add "$CPO_TASK_ID.txt" && '
    'git commit -q -m "$CPO_TASK_ID" && : > .claude-task-complete'
)
ARGS = ("--backend", "command", "--agent-command", AGENT)
SPEC = "TS-0042"


def processes_in(folder: Path) -> list[int]:
    """Live processes whose working directory is inside `folder` (agents, validations)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            cwd = os.readlink(entry / "cwd") if entry.name.isdigit() else ""
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] if cwd else ""
        except OSError:
            continue
        if cwd.startswith(str(folder)) and state != "Z":
            pids.append(int(entry.name))
    return pids


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def problems_after_resume(repo: Path, root: Path, tasks: list[str]) -> list[str]:
    """What is wrong with the repository once the resumed run ended (empty: all right)."""
    found = []
    data = report(root)
    if data["status"] != "completed":
        found.append(f"run {data['status']}: {data.get('error')}")
    integ = f"integration/{SPEC}"
    merges = git(repo, "log", "--merges", "--format=%s", integ).splitlines()
    for task in tasks:
        times = sum(f" ({task}, wave " in m for m in merges)
        if times != 1:
            found.append(f"{task} merged {times} times")
        shown = git(repo, "show", f"{integ}:{task}.txt") if times else ""
        if shown != task:
            found.append(f"{task}.txt in {integ}: {shown!r}")
    deletions = git(repo, "log", "--all", "--diff-filter=D", "--format=%h %s")
    if deletions:
        found.append(f"commits deleting files: {deletions}")
    worktree = Path(data["integration_worktree"])
    if git(worktree, "status", "--porcelain") or not (worktree / "README.md").exists():
        found.append("integration worktree not clean")
    return found


# The quick suite kills after every third step (1, 4, 7, ...: it still meets the steps
# where the old code lost files); the slow suite after every one.
@pytest.mark.parametrize(
    "stride",
    [
        pytest.param(3, id="every-third-step"),
        pytest.param(1, id="every-step", marks=pytest.mark.slow),
    ],
)
def test_a_kill_after_each_git_step_then_resume_gives_the_right_result(
    git_repo: Path, tmp_path: Path, stride: int
) -> None:
    tasks = ["task-001", "task-002"]
    make_spec(
        git_repo,
        [{"task-001": "one"}, {"task-002": "two"}],
        deps={"task-002": ["task-001"]},
        validation={1: "test -f task-001.txt"},
    )
    failures: list[str] = []
    step = 1 - stride
    while True:
        step += stride
        where = tmp_path / f"step-{step}"
        repo = where / "repo"
        shutil.copytree(git_repo, repo, symlinks=True)
        root = repo / "parallel" / SPEC
        first = cpo("run", str(root), *ARGS, cwd=repo, env={KILL_AFTER_GIT_CALL: str(step)})
        if first.returncode != -signal.SIGKILL:
            assert first.returncode == 0, first.stdout + first.stderr
            break  # the run ended before its Nth git call: every step was covered
        # The watchdog stops the killed run's agent; a resume must not race it.
        wait_until(lambda: not processes_in(where))  # noqa: B023 - used at once
        resumed = cpo("run", str(root), "--resume", *ARGS, cwd=repo)
        if resumed.returncode != 0:
            failures.append(f"kill after git call {step}: resume exit {resumed.returncode}")
            continue
        failures += [
            f"kill after git call {step}: {p}" for p in problems_after_resume(repo, root, tasks)
        ]
        shutil.rmtree(where)
    # The run makes ~19 git calls (2 tasks, 2 waves): far fewer means the hook never killed.
    assert step > 12, f"only {step - 1} git steps: is the kill hook working?"
    assert not failures, "\n".join(failures)
