"""The stash every worktree shares: an agent's `git stash` neither hides its work from the
check of its task nor takes another's entry unnoticed (cpo.run.stash).

End to end: a real `cpo run --backend command` whose agent is a shell command.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cpo.git import MARKER
from cpo.run.protocol import COMPLETION_PROTOCOL
from cpo.run.stash import StashEntry, stash_change
from tests.conftest import git
from tests.executorkit import run_with
from tests.runkit import cpo, make_spec, report
from tests.workerkit import bare_remote

DONE = f"echo '{{\"task_completed\": true}}' > {MARKER}"


def _run(repo: Path, agent: str) -> dict[str, Any]:
    root = repo / "parallel" / "TS-0042"
    if not root.exists():
        make_spec(repo, [{"task-001": "work"}])
    proc = cpo("run", str(root), "--backend", "command", "--agent-command", agent, cwd=repo)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    data = report(root)
    data["stdout"] = proc.stdout
    return data


def _stash(repo: Path) -> list[str]:
    return git(repo, "stash", "list", "--format=%H %gs").splitlines()


def _integration_files(repo: Path, data: dict[str, Any]) -> list[str]:
    return git(repo, "ls-tree", "-r", "--name-only", data["integration_branch"]).split()


def test_the_protocol_forbids_the_stash() -> None:
    assert "Do not use git stash" in COMPLETION_PROTOCOL
    assert "commit it on the" in COMPLETION_PROTOCOL


def test_work_left_in_the_stash_fails_the_task_and_stays_there(git_repo: Path) -> None:
    agent = (
        "echo committed > done.txt && git add -A && git commit -qm part && "
        "echo stashed > work.txt && git add -A && git stash -q && " + DONE
    )
    data = _run(git_repo, agent)
    t = data["tasks"]["task-001"]
    assert (t["status"], t["reason"], t["merged"]) == ("failed", "stashed_work", False), t
    # The entry is still in the stash, named with the command that brings it back.
    (entry,) = _stash(git_repo)
    commit = entry.split()[0]
    assert entry.endswith(f"WIP on {t['branch']}: " + entry.split(": ", 1)[1])
    (warning,) = [w for w in t["warnings"] if "stash" in w]
    assert f"git -C {shlex.quote(t['worktree'])} stash apply {commit}" in warning
    assert commit[:12] in t["error"]
    # Nothing merged; the committed part is on the branch; the command in the warning works.
    assert "done.txt" not in _integration_files(git_repo, data)
    assert git(git_repo, "ls-tree", "--name-only", t["branch"], "done.txt") == "done.txt"
    apply = warning.rsplit("Bring it back with: ", 1)[1]
    subprocess.run(apply, shell=True, check=True, cwd=git_repo, capture_output=True)
    assert (Path(t["worktree"]) / "work.txt").read_text() == "stashed\n"
    assert "stashed_work" in data["stdout"]


def test_the_next_step_brings_stashed_work_back_and_resume_merges_it(git_repo: Path) -> None:
    data = _run(git_repo, f"echo stashed > work.txt && git add -A && git stash -q && {DONE}")
    t, step = data["tasks"]["task-001"], data["next_step"]
    (commit,) = [entry.split()[0] for entry in _stash(git_repo)]
    wt, integ = shlex.quote(t["worktree"]), shlex.quote(data["integration_worktree"])
    assert f"git -C {wt} stash apply {commit}" in step
    assert f"git -C {integ} merge {t['branch']}" in step and step.endswith("--resume")
    # Done as it says: the work is merged and the run completes.
    git(Path(t["worktree"]), "stash", "apply", "-q", commit)
    git(Path(t["worktree"]), "add", "-A")
    git(Path(t["worktree"]), "commit", "-qm", "the stashed work")
    git(Path(data["integration_worktree"]), "merge", "-q", "--no-edit", t["branch"])
    root = git_repo / "parallel" / "TS-0042"
    proc = cpo("run", str(root), "--resume", "--backend", "command", "--agent-command", "false",
               cwd=git_repo)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    after = report(root)
    assert (after["status"], after["tasks"]["task-001"]["merged"]) == ("completed", True)
    assert "work.txt" in _integration_files(git_repo, after)


def test_popping_the_users_entry_is_caught_and_the_entry_can_be_put_back(
    git_repo: Path,
) -> None:
    make_spec(git_repo, [{"task-001": "work"}])
    (git_repo / "README.md").write_text("# the user's unfinished edit\n")
    git(git_repo, "stash", "push", "-q", "-m", "mine")
    (mine,) = _stash(git_repo)
    agent = f"echo x > work.txt && git stash pop -q && git add -A && git commit -qm work && {DONE}"
    data = _run(git_repo, agent)
    t = data["tasks"]["task-001"]
    assert (t["status"], t["reason"], t["merged"]) == ("failed", "stash_taken", False), t
    assert _stash(git_repo) == []  # the agent took it
    (warning,) = [w for w in t["warnings"] if "stash" in w]
    assert mine.split()[0][:12] in warning and "README.md" in warning
    # The user's edit did not reach the integration branch.
    integ = git(git_repo, "show", f"{data['integration_branch']}:README.md")
    assert "unfinished" not in integ
    store = warning.rsplit("put it back with: ", 1)[1]
    subprocess.run(store, shell=True, check=True, cwd=git_repo, capture_output=True)
    assert _stash(git_repo) == [mine]


def test_an_entry_stashed_and_popped_by_the_agent_is_its_own_business(git_repo: Path) -> None:
    agent = (
        "echo x > work.txt && git add -A && git stash -q && git stash pop -q && "
        f"git add -A && git commit -qm work && {DONE}"
    )
    data = _run(git_repo, agent)
    t = data["tasks"]["task-001"]
    assert (t["status"], t["merged"], t["warnings"]) == ("completed", True, []), t


def test_a_changed_stash_is_judged_by_branch() -> None:
    mine = StashEntry("a" * 40, "WIP on feature/x/task-001: 1234567 start")
    other = StashEntry("b" * 40, "On main: mine")
    detached = StashEntry("c" * 40, "WIP on (no branch): 1234567 start")
    assert (mine.branch, other.branch, detached.branch) == ("feature/x/task-001", "main", None)
    change = stash_change((other,), (mine, detached), "feature/x/task-001")
    assert (change.stashed, change.taken) == ((mine,), (other,))
    # An earlier attempt's own entry, popped by this one: not another's.
    assert stash_change((mine,), (), "feature/x/task-001").taken == ()


STASHES = (
    "echo committed > done.txt && git add -A && git commit -qm part && "
    "echo stashed > work.txt && git add -A && git stash -q && " + DONE
)
STASHING = ("--backend", "command", "--agent-command", STASHES)


@pytest.mark.skipif(sys.platform != "linux", reason="the worker reads /proc")
def test_work_left_in_a_workers_stash_fails_the_task_and_is_pushed_not_lost(
    git_repo: Path,
) -> None:
    """Under `--executor subprocess` the agent stashes in the worker's clone, which is
    removed after the attempt: the task fails as under local, and the entry is on the
    remote (and fetched here), so the warning's command brings it back."""
    make_spec(git_repo, [{"task-001": "work"}])
    root = git_repo / "parallel" / "TS-0042"
    proc = run_with("subprocess", git_repo, root, *STASHING)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    data = report(root)
    t = data["tasks"]["task-001"]
    assert (t["status"], t["reason"], t["merged"]) == ("failed", "stashed_work", False), t
    (warning,) = [w for w in t["warnings"] if "stash" in w]
    assert "the worker's clone" in warning
    commit = warning.rsplit("stash apply ", 1)[1]
    assert commit[:12] in t["error"] and "worker's clone" in t["error"]
    # The clone is gone; the entry is a branch on the remote, and fetched here.
    assert list((git_repo.parent / "worker-clones").iterdir()) == []
    name = f"cpo-worker/TS-0042/task-001/attempt-1-stash-{commit[:12]}"
    remote = git_repo.parent / "remote.git"
    assert git(remote, "rev-parse", f"refs/heads/{name}") == commit
    assert git(git_repo, "rev-parse", f"refs/cpo-worker/{name}") == commit
    # Nothing merged; the committed part is on the branch; the next step's commands bring
    # the entry back in a worktree of the task's branch here.
    assert "done.txt" not in _integration_files(git_repo, data)
    assert git(git_repo, "ls-tree", "--name-only", t["branch"], "done.txt") == "done.txt"
    wt = shlex.quote(t["worktree"])
    bring = f"git worktree add {wt} {t['branch']}; git -C {wt} stash apply {commit}"
    assert bring in data["next_step"]
    subprocess.run(bring, shell=True, check=True, cwd=git_repo, capture_output=True)
    assert (Path(t["worktree"]) / "work.txt").read_text() == "stashed\n"
    assert (Path(t["worktree"]) / "done.txt").read_text() == "committed\n"


@pytest.mark.skipif(sys.platform != "linux", reason="the worker reads /proc")
def test_a_workers_stash_entry_the_remote_refuses_keeps_the_clone(git_repo: Path) -> None:
    """The remote refuses the entry's branch (a hook here): the worker keeps its clone, and
    the warning says where and how to bring the entry back from it."""
    make_spec(git_repo, [{"task-001": "work"}])
    root = git_repo / "parallel" / "TS-0042"
    bare_remote(git_repo)
    hook = git_repo.parent / "remote.git" / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\nif grep -q -- '-stash-'; then echo no stash here >&2; exit 1; fi\n")
    hook.chmod(0o755)
    proc = run_with("subprocess", git_repo, root, *STASHING)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    t = report(root)["tasks"]["task-001"]
    assert (t["status"], t["reason"], t["merged"]) == ("failed", "stashed_work", False), t
    (warning,) = [w for w in t["warnings"] if "stash" in w]
    assert "could not be pushed" in warning and "cpo kept the clone" in warning
    (kept,) = (git_repo.parent / "worker-clones").iterdir()
    bring = warning.rsplit("Bring it back there with: ", 1)[1]
    assert str(kept / "work") in bring
    subprocess.run(bring, shell=True, check=True, capture_output=True)
    assert (kept / "work" / "work.txt").read_text() == "stashed\n"
