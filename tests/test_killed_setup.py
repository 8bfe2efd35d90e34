"""A run killed in the middle of a worktree's `git worktree add`, or of a launch's
`reset --hard` in a worktree that already has an index, then `--resume`: it completes.

git is held at the exact point by a configuration include that only git processes of one
worktree read (`includeIf.gitdir:`, given to the first run only through GIT_CONFIG_* in
its environment): a FIFO nobody writes (the `symbolic-ref` that `worktree add` runs to set
the new HEAD waits on it), or a smudge filter that waits for a gate file. Then cpo and its
git are killed together (the process group: SIGKILL of the session, the OOM killer, a
reboot). Real cpo, real git, real kills.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import git
from tests.runkit import cpo, make_spec
from tests.test_kill_steps import ARGS, problems_after_resume, processes_in, wait_until

TASKS = ["task-001", "task-002"]


def start_run(
    repo: Path, root: Path, config: dict[str, str], args: tuple[str, ...] = ARGS
) -> subprocess.Popen[bytes]:
    """`cpo run` with extra git configuration, in a session of its own (to kill it whole)."""
    env = {**os.environ, "GIT_CONFIG_COUNT": str(len(config))}
    for i, (key, value) in enumerate(config.items()):
        env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = key, value
    return subprocess.Popen(
        [sys.executable, "-m", "cpo", "run", str(root), *args],
        cwd=repo,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def kill_whole(run: subprocess.Popen[bytes], where: Path) -> None:
    """SIGKILL cpo and every process of its group (its git, their filters)."""
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    wait_until(lambda: not processes_in(where))


def only_in(repo: Path, worktree: str) -> str:
    """The `includeIf` key of configuration read only by git working in that worktree."""
    return f"includeIf.gitdir:{repo}/.git/worktrees/{worktree}.path"  # no "/": that one dir


def test_a_worktree_add_killed_with_its_git_is_made_again_by_resume(
    git_repo: Path, tmp_path: Path
) -> None:
    """Killed between `worktree add` writing its placeholder HEAD and setting it: the
    worktree stays registered with a HEAD naming no commit (`Could not parse object
    'HEAD'` for every git command in it)."""
    root = make_spec(git_repo, [{"task-001": "one"}, {"task-002": "two"}])
    hold = tmp_path / "hold"
    os.mkfifo(hold)  # opened for reading, it blocks until a writer comes: none does
    run = start_run(git_repo, root, {only_in(git_repo, "task-001"): str(hold)})
    meta = git_repo / ".git" / "worktrees" / "task-001"
    wait_until(lambda: (meta / "commondir").exists())  # written right after the HEAD
    kill_whole(run, tmp_path)
    assert (meta / "HEAD").read_text().strip("0\n") == "", "HEAD was set: nothing to test"

    resumed = cpo("run", str(root), "--resume", *ARGS, cwd=git_repo)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert problems_after_resume(git_repo, root, TASKS) == []


def warm_first_agent(repo: Path) -> str:
    """The agent of test_kill_steps, except that task-001's first waits until task-002's
    worktree is checked out at the base (warm: it has an index), and also writes a file
    that sorts before the gated one (a move to the start point writes it first)."""
    index = "$(git -C ../task-002 rev-parse --path-format=absolute --git-path index)"
    wait = f'n=0; until [ -e "{index}" ] || [ $n -gt 500 ]; do sleep 0.02; n=$((n+1)); done'
    first = f'if [ "$CPO_TASK_ID" = task-001 ]; then {wait}; echo a > a.txt; git add a.txt; fi'
    return f"{first}; {ARGS[3]}"


def test_a_launch_reset_killed_in_a_warm_worktree_is_finished_by_resume(
    git_repo: Path, tmp_path: Path
) -> None:
    """task-002 waits for task-001, so its worktree is checked out at the base meanwhile;
    its launch then moves it to the start point (task-001's work) with `reset --hard`,
    held here on task-001.txt after a.txt is written, and killed with cpo. The index.lock
    it leaves must not fail the resumed launch, and the half-done move is no work of the
    agent: no commit of it, no attempt branch."""
    (git_repo / ".gitattributes").write_text("task-001.txt filter=gate\n")
    root = make_spec(
        git_repo, [{"task-001": "one"}, {"task-002": "two"}], deps={"task-002": ["task-001"]}
    )
    gate = tmp_path / "gate"
    filters = tmp_path / "gate.config"  # quoted: `;` starts a comment in a config file
    smudge = f"while [ ! -e '{gate}' ]; do sleep 0.02; done; cat"
    filters.write_text(f'[filter "gate"]\n\tsmudge = "{smudge}"\n')
    args = ("--backend", "command", "--agent-command", warm_first_agent(git_repo))
    run = start_run(git_repo, root, {only_in(git_repo, "task-002"): str(filters)}, args)
    meta = git_repo / ".git" / "worktrees" / "task-002"
    wait_until(lambda: (meta / "index.lock").exists() and (meta / "index").exists(), 60)
    kill_whole(run, tmp_path)
    assert (meta / "index.lock").exists(), "no reset cut short: nothing to test"

    resumed = cpo("run", str(root), "--resume", *args, cwd=git_repo)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert problems_after_resume(git_repo, root, TASKS) == []
    assert git(git_repo, "branch", "--list", "*attempt*") == ""
    log = git(git_repo, "log", "--format=%s", "--all")
    assert "uncommitted changes left by task-002" not in log
