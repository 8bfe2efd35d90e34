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

import pytest

from cpo.git import Git
from cpo.indexlock import git_processes_naming
from cpo.run.halfmoved import half_moved_to
from cpo.run.killedadd import mend_killed_adds
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


@pytest.mark.parametrize("name", ["task-001", "integration"])
def test_a_worktree_add_killed_with_its_git_is_made_again_by_resume(
    git_repo: Path, tmp_path: Path, name: str
) -> None:
    """Killed between `worktree add` writing its placeholder HEAD and setting it: the
    worktree stays registered with a HEAD naming no commit (`Could not parse object
    'HEAD'` for every git command in it). A task's, or the integration worktree's."""
    root = make_spec(git_repo, [{"task-001": "one"}, {"task-002": "two"}])
    hold = tmp_path / "hold"
    os.mkfifo(hold)  # opened for reading, it blocks until a writer comes: none does
    run = start_run(git_repo, root, {only_in(git_repo, name): str(hold)})
    meta = git_repo / ".git" / "worktrees" / name
    wait_until(lambda: (meta / "commondir").exists())  # written right after the HEAD
    kill_whole(run, tmp_path)
    assert (meta / "HEAD").read_text().strip("0\n") == "", "HEAD was set: nothing to test"

    resumed = cpo("run", str(root), "--resume", *ARGS, cwd=git_repo)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert problems_after_resume(git_repo, root, TASKS) == []


def warm_first_agent() -> str:
    """The agent of test_kill_steps, except that task-001's first waits until task-002's
    worktree is checked out at the base (warm: it has an index), and also writes a file
    that sorts before the gated one (a move to the start point writes it first)."""
    index = "$(git -C ../task-002 rev-parse --path-format=absolute --git-path index)"
    wait = f'n=0; until [ -e "{index}" ] || [ $n -gt 500 ]; do sleep 0.02; n=$((n+1)); done'
    first = f'if [ "$CPO_TASK_ID" = task-001 ]; then {wait}; echo a > a.txt; git add a.txt; fi'
    return f"{first}; {ARGS[3]}"


WARM_ARGS = ("--backend", "command", "--agent-command", warm_first_agent())


def killed_mid_launch(repo: Path, tmp_path: Path) -> tuple[Path, subprocess.Popen[bytes], Path]:
    """task-002 waits for task-001, so its worktree is checked out at the base meanwhile;
    its launch then moves it to the start point (task-001's work) with `reset --hard`,
    held here on task-001.txt (after a.txt is written) until `tmp_path/gate` exists. The
    run, still going, and the worktree's metadata folder."""
    (repo / ".gitattributes").write_text("task-001.txt filter=gate\n")
    root = make_spec(
        repo, [{"task-001": "one"}, {"task-002": "two"}], deps={"task-002": ["task-001"]}
    )
    filters = tmp_path / "gate.config"  # quoted: `;` starts a comment in a config file
    smudge = f"while [ ! -e '{tmp_path / 'gate'}' ]; do sleep 0.02; done; cat"
    filters.write_text(f'[filter "gate"]\n\tsmudge = "{smudge}"\n')
    run = start_run(repo, root, {only_in(repo, "task-002"): str(filters)}, WARM_ARGS)
    meta = repo / ".git" / "worktrees" / "task-002"
    wait_until(lambda: (meta / "index.lock").exists() and (meta / "index").exists(), 60)
    return root, run, meta


def test_a_launch_reset_killed_in_a_warm_worktree_is_finished_by_resume(
    git_repo: Path, tmp_path: Path
) -> None:
    """Killed with cpo: the index.lock it leaves must not fail the resumed launch, and the
    half-done move is no work of the agent: no commit of it, no attempt branch."""
    root, run, meta = killed_mid_launch(git_repo, tmp_path)
    kill_whole(run, tmp_path)
    assert (meta / "index.lock").exists(), "no reset cut short: nothing to test"

    resumed = cpo("run", str(root), "--resume", *WARM_ARGS, cwd=git_repo)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert problems_after_resume(git_repo, root, TASKS) == []
    assert git(git_repo, "branch", "--list", "*attempt*") == ""
    log = git(git_repo, "log", "--format=%s", "--all")
    assert "uncommitted changes left by task-002" not in log


def test_resume_waits_for_the_launch_reset_still_running(git_repo: Path, tmp_path: Path) -> None:
    """cpo alone killed (kill -9): the `reset --hard` it started goes on and will finish.
    The resumed launch waits for it rather than remove the lock under it."""
    root, run, meta = killed_mid_launch(git_repo, tmp_path)
    os.kill(run.pid, signal.SIGKILL)  # cpo only: its git waits at the gate
    run.wait()
    resumed = subprocess.Popen(
        [sys.executable, "-m", "cpo", "run", str(root), "--resume", *WARM_ARGS],
        cwd=git_repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        log = root / "logs" / "cpo.log"
        wait_until(lambda: "to finish its git command in" in log.read_text(), 60)
        assert (meta / "index.lock").exists(), "cpo removed a lock a live git holds"
    finally:
        (tmp_path / "gate").touch()  # the killed run's git finishes the reset
    out, _ = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, out
    assert problems_after_resume(git_repo, root, TASKS) == []
    assert git(git_repo, "branch", "--list", "*attempt*") == ""
    wait_until(lambda: not processes_in(tmp_path))


def half_added(repo: Path, name: str, hold: Path) -> Path:
    """A worktree whose `git worktree add` (a real one) was SIGKILLed before it set HEAD."""
    if not hold.exists():
        os.mkfifo(hold)
    folder = repo.parent / name
    git(repo, "branch", name)
    env = {**os.environ, "GIT_CONFIG_COUNT": "1"}
    env["GIT_CONFIG_KEY_0"], env["GIT_CONFIG_VALUE_0"] = only_in(repo, name), str(hold)
    add = subprocess.Popen(
        ["git", "worktree", "add", "-q", "--no-checkout", str(folder), name],
        cwd=repo,
        env=env,
        start_new_session=True,
    )
    wait_until(lambda: (repo / ".git" / "worktrees" / name / "commondir").exists())
    wait_until(lambda: bool(git_processes_naming(folder)))  # its symbolic-ref, held
    os.killpg(add.pid, signal.SIGKILL)
    add.wait()
    wait_until(lambda: not git_processes_naming(folder))
    return folder


def test_only_a_half_added_worktree_that_holds_nothing_is_removed(
    git_repo: Path, tmp_path: Path
) -> None:
    hold = tmp_path / "hold"
    plain, with_file, not_wanted = (half_added(git_repo, n, hold) for n in ("a", "b", "c"))
    (with_file / "notes.txt").write_text("someone's\n")
    done = git_repo.parent / "d"  # added whole, then its `locked` left behind
    git(git_repo, "worktree", "add", "-q", "--no-checkout", "-b", "d", str(done))
    (git_repo / ".git" / "worktrees" / "d" / "locked").write_text("initializing")
    repo = Git(git_repo)

    assert mend_killed_adds(repo, [plain, with_file, done]) == [plain.resolve()]
    assert not plain.exists()
    assert plain.resolve() not in repo.worktrees()
    assert {with_file.resolve(), not_wanted.resolve(), done.resolve()} <= set(repo.worktrees())
    assert (with_file / "notes.txt").exists()
    # The one killed after its HEAD was set is whole: only git's own lock is taken off it
    # (else `worktree remove` and `prune` refuse it for ever).
    assert not (git_repo / ".git" / "worktrees" / "d" / "locked").exists()
    assert (git_repo / ".git" / "worktrees" / "c" / "locked").exists()  # not wanted: as is
    assert git(git_repo, "branch", "--list", "a") != ""  # the branch is never touched
    repo.add_worktree(plain, "a")  # made again, as the set-up does
    assert (plain / "README.md").exists()


def test_a_change_unlike_the_start_point_is_work(git_repo: Path) -> None:
    """half_moved_to says yes only when every changed file is the start point's."""
    git(git_repo, "checkout", "-q", "-b", "start")
    (git_repo / "new.txt").write_text("new\n")
    (git_repo / "README.md").unlink()
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "start")
    git(git_repo, "checkout", "-q", "-")
    repo = Git(git_repo)
    assert half_moved_to(repo, git_repo, "start")  # nothing changed
    (git_repo / "new.txt").write_text("new\n")
    assert half_moved_to(repo, git_repo, "start")  # as the start point has it
    (git_repo / "README.md").unlink()
    assert half_moved_to(repo, git_repo, "start")  # the start point has none either
    (git_repo / "new.txt").write_text("the agent's\n")
    assert not half_moved_to(repo, git_repo, "start")
    (git_repo / "new.txt").write_text("new\n")
    (git_repo / "other.txt").write_text("the agent's\n")
    assert not half_moved_to(repo, git_repo, "start")
    (git_repo / "other.txt").unlink()
    (git_repo / "new.txt").chmod(0o755)
    assert not half_moved_to(repo, git_repo, "start")
