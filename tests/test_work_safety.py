"""What an agent committed is what is judged and merged, wherever it committed it; a
completion marker counts only when this attempt's agent wrote it (issue 11, items 1 and 2).

End to end: a real `cpo run --backend command` whose agent is a shell command doing to
git what careless or hostile agents do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cpo.git import MARKER
from tests.conftest import git
from tests.runkit import cpo, make_spec, report

# Each agent appends the commits it made to $AGENT_COMMITS, to check none is ever lost.
WORK = (
    'echo "$CPO_TASK_ID" > work.txt && git add -A && git commit -qm work && '
    'git rev-parse HEAD >> "$AGENT_COMMITS"'
)
DONE = f"echo '{{\"task_completed\": true}}' > {MARKER}"


def _run(repo: Path, agent: str, *args: str, tasks: int = 1) -> tuple[Path, dict[str, Any]]:
    root = repo / "parallel" / "TS-0042"
    if not root.exists():
        make_spec(repo, [{f"task-00{n}": "work" for n in range(1, tasks + 1)}])
    env = {"AGENT_COMMITS": str(repo.parent / "agent-commits")}
    proc = cpo("run", str(root), "--backend", "command", "--agent-command", agent, *args,
               cwd=repo, env=env)  # fmt: skip
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    return root, report(root)


def _agent_commits(repo: Path) -> list[str]:
    path = repo.parent / "agent-commits"
    return path.read_text().split() if path.exists() else []


def _unreachable_after_clean(repo: Path, root: Path) -> list[str]:
    """The agent's commits that no ref reaches once `cpo clean` has run."""
    cpo("clean", str(root), cwd=repo)
    out = git(repo, "fsck", "--unreachable", "--no-reflogs")
    lost = {line.split()[-1] for line in out.splitlines() if line.startswith("unreachable commit")}
    return [c for c in _agent_commits(repo) if c in lost]


def _integration_files(repo: Path, data: dict[str, Any]) -> list[str]:
    return git(repo, "ls-tree", "-r", "--name-only", data["integration_branch"]).split()


def _assert_merged_as_reported(repo: Path, data: dict[str, Any]) -> dict[str, Any]:
    t: dict[str, Any] = data["tasks"]["task-001"]
    assert (t["status"], t["reason"], t["merged"]) == ("completed", None, True), t
    assert t["commits"] == 1 and t["files_changed"] == ["work.txt"]
    assert t["head"] == _agent_commits(repo)[-1] == git(repo, "rev-parse", t["branch"])
    assert git(repo, "rev-parse", f"{t['merge_commit']}^2") == t["head"]
    assert "work.txt" in _integration_files(repo, data)
    # the worktree is back on its task branch
    assert git(Path(t["worktree"]), "symbolic-ref", "--short", "HEAD") == t["branch"]
    return t


# -- item 1: commits off the task branch ------------------------------------------------
def test_normal_commit_on_the_task_branch(git_repo: Path) -> None:
    root, data = _run(git_repo, f"{WORK} && {DONE}")
    t = _assert_merged_as_reported(git_repo, data)
    assert t["warnings"] == []
    assert _unreachable_after_clean(git_repo, root) == []


def test_commit_on_a_detached_head_is_merged(git_repo: Path) -> None:
    root, data = _run(git_repo, f"git checkout -q --detach && {WORK} && {DONE}")
    t = _assert_merged_as_reported(git_repo, data)
    assert any("detached HEAD" in w for w in t["warnings"])
    assert "detached HEAD" in Path(t["log"]).read_text()
    assert _unreachable_after_clean(git_repo, root) == []


def test_commit_on_another_branch_is_merged(git_repo: Path) -> None:
    root, data = _run(git_repo, f"git checkout -q -b other && {WORK} && {DONE}")
    t = _assert_merged_as_reported(git_repo, data)
    assert any("branch other" in w for w in t["warnings"])
    assert _unreachable_after_clean(git_repo, root) == []


def test_agent_that_deletes_its_own_branch(git_repo: Path) -> None:
    agent = (
        "b=$(git symbolic-ref --short HEAD) && git checkout -q --detach && "
        f'git branch -q -D "$b" && {WORK} && {DONE}'
    )
    root, data = _run(git_repo, agent)
    t = _assert_merged_as_reported(git_repo, data)
    assert any("deleted by the agent" in w for w in t["warnings"])
    assert _unreachable_after_clean(git_repo, root) == []


def test_diverged_branch_and_head_fail_and_keep_both(git_repo: Path) -> None:
    # one commit on the task branch, then another on a detached HEAD beside it
    agent = f"{WORK} && git checkout -q --detach HEAD~1 && echo 2 > two && {WORK} && {DONE}"
    root, data = _run(git_repo, agent)
    t = data["tasks"]["task-001"]
    assert (t["status"], t["reason"], t["merged"]) == ("failed", "diverged", False)
    on_branch, detached = _agent_commits(git_repo)
    kept = t["attempts"][-1]["kept_branch"]
    assert kept and git(git_repo, "rev-parse", kept) == detached
    assert git(git_repo, "rev-parse", t["branch"]) == on_branch == t["head"]
    assert kept in t["error"]
    assert "work.txt" not in _integration_files(git_repo, data)
    assert _unreachable_after_clean(git_repo, root) == []
    # clean knows the kept branch: refused while unmerged, said so
    assert f"refused branch {kept}" in cpo("clean", str(root), cwd=git_repo).stdout


def test_head_without_the_start_point_fails(git_repo: Path) -> None:
    # the agent checks out the repository's first commit: the spec is not in its tree
    agent = f"git checkout -q --detach $(git rev-list --max-parents=0 HEAD) && {WORK} && {DONE}"
    root, data = _run(git_repo, agent)
    t = data["tasks"]["task-001"]
    assert (t["status"], t["reason"]) == ("failed", "off_start_point")
    kept = t["attempts"][-1]["kept_branch"]
    assert kept and git(git_repo, "rev-parse", kept) == _agent_commits(git_repo)[-1]
    assert t["commits"] == 0 and git(git_repo, "rev-parse", t["branch"]) == t["start_point"]
    assert _unreachable_after_clean(git_repo, root) == []


def test_task_branch_reset_below_its_start_point_fails(git_repo: Path) -> None:
    _, data = _run(git_repo, f"git reset -q --hard HEAD~1 && {DONE}")
    t = data["tasks"]["task-001"]
    assert (t["status"], t["reason"], t["merged"]) == ("failed", "off_start_point", False)


# -- item 2: the completion marker ------------------------------------------------------
def test_force_added_marker_is_never_merged_nor_counted_later(git_repo: Path) -> None:
    # task-001 (wave 1) commits the marker; task-002 (wave 2) does nothing at all
    agent = (
        f'if [ "$CPO_TASK_ID" = task-001 ]; then {WORK} && {DONE} && '
        f"git add -f {MARKER} && git commit -qm marker; fi"
    )
    make_spec(git_repo, [{"task-001": "work"}, {"task-002": "nothing"}])
    _, data = _run(git_repo, agent)
    t1, t2 = data["tasks"]["task-001"], data["tasks"]["task-002"]
    assert (t1["status"], t1["merged"]) == ("completed", True)
    assert any("committed .claude-task-complete" in w for w in t1["warnings"])
    assert MARKER not in git(git_repo, "ls-tree", "--name-only", t1["branch"]).split()
    assert MARKER not in _integration_files(git_repo, data)
    assert (t2["status"], t2["reason"]) == ("failed", "no_completion_marker")


def test_marker_in_the_start_point_is_reported_and_does_not_count(git_repo: Path) -> None:
    (git_repo / MARKER).write_text("{}\n")
    git(git_repo, "add", "-f", MARKER)
    git(git_repo, "commit", "-q", "-m", "a marker slipped into main")
    agent = f'if [ "$CPO_TASK_ID" = task-001 ]; then {WORK} && {DONE}; fi'
    _, data = _run(git_repo, agent, tasks=2)
    t1, t2 = data["tasks"]["task-001"], data["tasks"]["task-002"]
    assert (t2["status"], t2["reason"]) == ("failed", "no_completion_marker")
    for t in (t1, t2):
        assert any("start point" in w and MARKER in w for w in t["warnings"]), t
        assert "warning: the start point" in Path(t["log"]).read_text()
    assert (t1["status"], t1["merged"]) == ("completed", True)
    assert MARKER not in _integration_files(git_repo, data)


def test_marker_of_a_failed_attempt_does_not_count_on_retry(git_repo: Path) -> None:
    _, data = _run(git_repo, f"{DONE} && exit 3")
    assert data["tasks"]["task-001"]["reason"] == "exit_code_3"
    _, data = _run(git_repo, "true", "--retry-failed")
    assert data["tasks"]["task-001"]["reason"] == "no_completion_marker"


# -- item 14: a submodule the agent changed -------------------------------------------------
def test_changes_inside_a_submodule_do_not_fail_the_task(git_repo: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    git(lib, "init", "-q", "-b", "main")
    (lib / "lib.txt").write_text("lib\n")
    git(lib, "add", "-A")
    git(lib, "commit", "-q", "-m", "lib")
    git(git_repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "lib")
    git(git_repo, "commit", "-q", "-m", "add lib")
    agent = (
        "git -c protocol.file.allow=always submodule update -q --init && "
        f"echo edited >> lib/lib.txt && {WORK} && {DONE}"
    )
    _, data = _run(git_repo, agent)
    t = _assert_merged_as_reported(git_repo, data)
    note = next(w for w in t["warnings"] if "submodule" in w)
    assert "lib" in note and "uncommitted" in note
    assert t["leftovers_committed"] is False
    # the edit is still there, for the user to commit in the submodule if they want it
    assert "edited" in (Path(t["worktree"]) / "lib" / "lib.txt").read_text()


def test_commits_off_the_branch_survive_a_crash_and_a_retry(git_repo: Path) -> None:
    root, data = _run(git_repo, "exit 3")
    wt = Path(data["tasks"]["task-001"]["worktree"])
    # what an agent cut short along with cpo leaves: commits on a detached HEAD
    git(wt, "checkout", "-q", "--detach")
    (wt / "late.txt").write_text("late\n")
    git(wt, "add", "late.txt")
    git(wt, "commit", "-q", "-m", "late work")
    late = git(wt, "rev-parse", "HEAD")
    (git_repo.parent / "agent-commits").write_text(late + "\n")
    _, data = _run(git_repo, "true", "--retry-failed")
    t = data["tasks"]["task-001"]
    assert t["reason"] == "no_completion_marker"
    saved = t["attempts"][0]["saved_branch"]
    assert saved and git(git_repo, "rev-parse", saved) == late
    assert _unreachable_after_clean(git_repo, root) == []


def test_an_agent_stopped_mid_commit_leaves_no_lock_that_fails_the_task(git_repo: Path) -> None:
    """An agent killed in the middle of `git commit` leaves the worktree's index.lock:
    every later git command there failed on it, so cpo could not commit what the agent
    left and the task failed (git_error, after ~7 s of retries). The agent's group is gone
    when cpo takes over: the lock is stale, removed, and said."""
    agent = (
        f'echo "$CPO_TASK_ID" > work.txt && touch "$(git rev-parse --git-dir)/index.lock" && {DONE}'
    )
    _, data = _run(git_repo, agent)
    t = data["tasks"]["task-001"]
    assert (t["status"], t["merged"], t["files_changed"]) == ("completed", True, ["work.txt"]), t
    assert any("index.lock" in w and "removed" in w for w in t["warnings"]), t["warnings"]
