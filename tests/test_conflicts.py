"""Merge conflicts end to end (issue 19): predicted as soon as a task finishes, then
handled by --on-conflict rerun, resolve or stop; a hand merge counts on --resume.

Two wave-1 tasks both write `shared.txt`, with real git and the scripted claude.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cpo.git import Git
from cpo.plan.model import TaskSpec
from cpo.run.conflicts import clash
from cpo.run.options import RunOptions
from cpo.run.scheduler import RERUN, run_schedule
from cpo.run.scripts import run_flags
from tests.conftest import git
from tests.runkit import cpo, make_spec, repo_state, report
from tests.test_scheduler import FakeHooks, make_plan

pytestmark = pytest.mark.usefixtures("fake_claude")

FIRST = "@script write shared.txt one\\n\n@script commit one\n@script marker"
# Appends: from the integration head (after a rerun) it builds on the first task's line.
SECOND = "@script append shared.txt two\\n\n@script commit two\n@script marker"


def progress(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("[PROGRESS]")]


def two_writers(repo: Path, second: str = SECOND, first: str = FIRST, **extra: Any) -> Path:
    """task-001 and task-002 in wave 1 both create shared.txt; task-003 needs task-002."""
    return make_spec(
        repo,
        [{"task-001": first, "task-002": second}, {"task-003": "@script marker"}],
        deps={"task-003": ["task-002"]},
        **extra,
    )


def last_subject(repo: Path, branch: str) -> str:
    """The subject of the branch's last commit; "" while the branch does not exist."""
    log = ["git", "log", "-1", "--format=%s", branch]
    return subprocess.run(log, cwd=repo, capture_output=True, text=True).stdout


def wait_for(read: Callable[[], str], word: str, timeout: float = 60.0) -> None:
    """Until `read()` holds `word` (git's answers change as the run goes on)."""
    deadline = time.monotonic() + timeout
    while word not in read():
        assert time.monotonic() < deadline, f"{word!r} never came"
        time.sleep(0.1)


def integration(data: dict[str, Any]) -> Path:
    return Path(data["integration_worktree"])


def assert_not_mid_merge(data: dict[str, Any]) -> None:
    """The integration worktree is clean, on its branch, at task-001's merge."""
    integ = integration(data)
    assert git(integ, "status", "--porcelain") == ""
    assert subprocess.run(
        ["git", "rev-parse", "-q", "--verify", "MERGE_HEAD"], cwd=integ, capture_output=True
    ).returncode, "the integration worktree was left in the middle of a merge"
    assert git(integ, "symbolic-ref", "--short", "HEAD") == data["integration_branch"]
    assert git(integ, "rev-parse", "HEAD") == data["tasks"]["task-001"]["merge_commit"]
    assert (integ / "shared.txt").read_text() == "one\n"


# -- prediction --------------------------------------------------------------------------
def test_merge_tree_names_the_conflicting_files_without_touching_a_worktree(
    git_repo: Path,
) -> None:
    for branch, text in (("a", "one\n"), ("b", "two\n"), ("c", None)):
        git(git_repo, "switch", "-q", "-c", branch, "main")
        (git_repo / ("shared.txt" if text else "other.txt")).write_text(text or "x\n")
        git(git_repo, "add", "-A")
        git(git_repo, "commit", "-qm", branch)
    git(git_repo, "switch", "-q", "main")
    before = repo_state(git_repo)
    g = Git(git_repo)
    assert g.merge_tree("a", "b") == ("shared.txt",)
    assert g.merge_tree("a", "c") == ()
    assert repo_state(git_repo) == before


def test_a_conflict_is_predicted_before_the_merge(git_repo: Path) -> None:
    root = two_writers(git_repo)
    proc = cpo("run", str(root), "--on-conflict", "stop", cwd=git_repo)
    assert proc.returncode == 1
    lines = progress(proc.stdout)
    predicted = (
        "[PROGRESS] wave=1 task=task-002 status=conflict_predicted with=task-001 files=shared.txt"
    )
    met = "[PROGRESS] wave=1 task=task-002 status=conflict files=shared.txt action=stop"
    assert predicted in lines and met in lines
    assert lines.index(predicted) < lines.index(met)
    # Against task-001's branch, or the integration head once task-001 is merged.
    predictions = report(root)["tasks"]["task-002"]["predicted_conflicts"]
    assert [(p["with_task"], p["files"]) for p in predictions] == [("task-001", ["shared.txt"])]
    assert (
        "predicted conflict with task-001 in shared.txt"
        in (root / "logs" / "task-002.log").read_text()
    )
    status = cpo("status", str(root), cwd=git_repo, env={"COLUMNS": "200"})
    assert "conflict predicted: shared.txt with task-001" in status.stdout, status.stderr


# -- rerun -------------------------------------------------------------------------------
def test_rerun_runs_the_task_again_on_top_of_the_first(git_repo: Path, tmp_path: Path) -> None:
    saved = tmp_path / "task-002-prompt.txt"
    root = two_writers(git_repo, f"@script save-prompt {saved}\n{SECOND}")
    proc = cpo("run", str(root), cwd=git_repo)  # rerun is the default
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = report(root)
    t2 = data["tasks"]["task-002"]
    assert (t2["status"], t2["merged"]) == ("completed", True)
    assert [w["status"] for w in data["waves"]] == ["completed", "completed"]
    assert (integration(data) / "shared.txt").read_text() == "one\ntwo\n"
    # The second attempt started from the integration head with task-001's work in it.
    first, second = t2["attempts"]
    assert second["start_point"] == data["tasks"]["task-001"]["merge_commit"]
    # Its first work is kept on an attempt branch, never deleted.
    assert first["saved_branch"] == f"{t2['branch']}-attempt-1"
    assert git(git_repo, "show", f"{first['saved_branch']}:shared.txt") == "two"
    (event,) = t2["conflicts"]
    assert (event["action"], event["outcome"]) == ("rerun", "rerun")
    assert (event["files"], event["with_tasks"]) == (["shared.txt"], ["task-001"])
    # The prompt as the rerun's agent got it names the files and the task to build on.
    prompt = saved.read_text()
    assert "=== MERGE CONFLICT: BUILD ON THE WORK ALREADY MERGED ===" in prompt
    assert "- shared.txt" in prompt and "the work of task-001" in prompt
    assert first["saved_branch"] in prompt
    log = (root / "logs" / "task-002.log").read_text()
    assert "=== merge conflict in shared.txt (with task-001): --on-conflict rerun ===" in log
    assert "attempt 2 ===" in log
    lines = progress(proc.stdout)
    assert lines.count("[PROGRESS] wave=1 task=task-002 status=started") == 2
    assert "[PROGRESS] execution status=completed" in lines


def test_rerun_with_the_dag_schedule(git_repo: Path) -> None:
    # Merges follow the order tasks end in: whichever ends second runs again.
    root = two_writers(git_repo, second=SECOND, first=SECOND.replace("two", "one"))
    proc = cpo("run", str(root), "--schedule", "dag", "--on-conflict", "rerun", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = report(root)
    assert all(t["merged"] for t in data["tasks"].values())
    lines = (integration(data) / "shared.txt").read_text().splitlines()
    assert sorted(lines) == ["one", "two"]
    reruns = [t["id"] for t in data["tasks"].values() if t["conflicts"]]
    assert len(reruns) == 1 and len(data["tasks"][reruns[0]]["attempts"]) == 2


# -- resolve -----------------------------------------------------------------------------
RESOLVER = (
    "@script resolve save-prompt {saved}\n"
    "@script resolve write shared.txt one\\ntwo\\n\n"
    "@script resolve commit resolve the merge\n"
)


def test_resolve_commits_a_clean_merge(git_repo: Path, tmp_path: Path) -> None:
    saved = tmp_path / "resolver-prompt.txt"
    root = two_writers(git_repo, SECOND + "\n" + RESOLVER.format(saved=saved))
    # One agent slot: the resolver takes it once the tasks are done.
    proc = cpo("run", str(root), "--on-conflict", "resolve", "-j", "1", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = report(root)
    t2 = data["tasks"]["task-002"]
    assert (t2["status"], t2["merged"], len(t2["attempts"])) == ("completed", True, 1)
    (event,) = t2["conflicts"]
    assert (event["action"], event["outcome"], event["error"]) == ("resolve", "resolved", None)
    # The resolver's cost (a scripted run costs something) counts in the task's.
    assert event["resolver_cost_usd"] and event["resolver_session_id"]
    assert t2["cost_usd"] == pytest.approx(
        t2["attempts"][0]["cost_usd"] + event["resolver_cost_usd"]
    )
    integ = integration(data)
    assert (integ / "shared.txt").read_text() == "one\ntwo\n"
    # A real merge commit: both tasks' heads are in it.
    assert event["merge_commit"] == t2["merge_commit"] == git(integ, "rev-parse", "HEAD")
    parents = git(integ, "rev-list", "--parents", "-n", "1", "HEAD").split()[1:]
    assert parents == [data["tasks"]["task-001"]["merge_commit"], t2["head"]]
    assert git(integ, "status", "--porcelain") == ""
    # The resolver got both tasks' prompts and summaries, not their directives to follow.
    prompt = saved.read_text()
    assert "=== TASK task-001 (already merged" in prompt
    assert "=== TASK task-002 (being merged" in prompt
    assert "- shared.txt" in prompt and "scripted agent finished" in prompt
    assert not (integ / ".claude-task-complete").exists()


@pytest.mark.parametrize(
    ("script", "problem"),
    [
        ("@script resolve commit left the markers in", "conflict markers committed in shared.txt"),
        ("@script resolve text I could not decide", "the merge was not committed"),
    ],
)
def test_a_resolver_that_fails_leaves_no_merge_half_done(
    git_repo: Path, script: str, problem: str
) -> None:
    root = two_writers(git_repo, f"{SECOND}\n{script}")
    proc = cpo("run", str(root), "--on-conflict", "resolve", cwd=git_repo)
    assert proc.returncode == 1
    data = report(root)
    t2 = data["tasks"]["task-002"]
    assert (t2["status"], t2["reason"], t2["merged"]) == ("failed", "conflict", False)
    (event,) = t2["conflicts"]
    assert event["outcome"] == "unresolved" and problem in event["error"]
    assert data["tasks"]["task-003"]["reason"] == "dependency_failed"
    assert_not_mid_merge(data)
    if event["kept_branch"]:  # the rejected resolution's commit is kept, not lost
        assert "<<<<<<<" in git(git_repo, "show", f"{event['kept_branch']}:shared.txt")
    else:
        assert "not committed" in problem
    assert problem in (root / "logs" / "task-002.log").read_text()


# -- stop, then a hand merge or a retry ---------------------------------------------------
def test_stop_then_a_hand_merge_counts_on_resume(git_repo: Path) -> None:
    root = two_writers(git_repo)
    before = repo_state(git_repo)
    stopped = cpo("run", str(root), "--on-conflict", "stop", "--json", cwd=git_repo)
    assert stopped.returncode == 1
    summary = json.loads(stopped.stdout)
    (t2_summary,) = [t for t in summary["tasks"] if t["id"] == "task-002"]
    assert t2_summary["conflicts"] == [
        {"files": ["shared.txt"], "with_tasks": ["task-001"], "outcome": "stopped"}
    ]
    data = report(root)
    t2 = data["tasks"]["task-002"]
    assert (t2["status"], t2["reason"], t2["conflict_files"]) == (
        "failed",
        "conflict",
        ["shared.txt"],
    )
    assert [(e["action"], e["outcome"]) for e in t2["conflicts"]] == [("stop", "stopped")]
    assert_not_mid_merge(data)
    log = (root / "logs" / "task-002.log").read_text()
    assert "merge conflict in shared.txt (with task-001): --on-conflict stop" in log
    # The user resolves it by hand, as the next step says.
    integ = integration(data)
    merge = subprocess.run(["git", "merge", t2["branch"]], cwd=integ, capture_output=True)
    assert merge.returncode == 1
    (integ / "shared.txt").write_text("one\ntwo\n")
    git(integ, "add", "shared.txt")
    git(integ, "commit", "-q", "--no-edit")
    proc = cpo("run", str(root), "--resume", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = report(root)
    t2 = data["tasks"]["task-002"]
    assert (t2["status"], t2["merged"], t2["reason"]) == ("completed", True, None)
    assert len(t2["attempts"]) == 1, "the task ran again"
    assert t2["conflicts"][-1]["outcome"] == "merged_by_hand"
    assert "task=task-002 status=started" not in proc.stdout
    assert "task-002 was merged by hand" in proc.stderr
    assert data["tasks"]["task-003"]["merged"]
    assert (integ / "shared.txt").read_text() == "one\ntwo\n"
    assert repo_state(git_repo) == before


@pytest.mark.parametrize("edited", [False, True], ids=["retry-failed", "edited-then-resume"])
def test_run_again_after_a_conflict_it_builds_on_the_merged_work(
    git_repo: Path, edited: bool
) -> None:
    root = two_writers(git_repo)
    assert cpo("run", str(root), "--on-conflict", "stop", cwd=git_repo).returncode == 1
    again = "--retry-failed"
    if edited:  # a changed task runs again too, and from the same place
        task = root / "tasks" / "task-002.md"
        task.write_text(task.read_text() + "Keep the first line.\n")
        git(git_repo, "commit", "-qam", "task-002: keep the first line")
        again = "--resume"
    proc = cpo("run", str(root), again, "--on-conflict", "stop", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = report(root)
    t2 = data["tasks"]["task-002"]
    assert (
        t2["merged"]
        and t2["attempts"][-1]["start_point"] == (data["tasks"]["task-001"]["merge_commit"])
    )
    assert (integration(data) / "shared.txt").read_text() == "one\ntwo\n"


@pytest.mark.parametrize("where", ["manifest", "config"])
def test_on_conflict_from_the_manifest_or_config_and_a_bad_flag(git_repo: Path, where: str) -> None:
    if where == "config":  # the repository's settings (committed: the tree stays clean)
        (git_repo / ".cpo").mkdir()
        (git_repo / ".cpo" / "config.yaml").write_text("run:\n  on_conflict: stop\n")
    extra = {"on_conflict": "stop"} if where == "manifest" else {}
    root = two_writers(git_repo, extra=extra)
    assert cpo("run", str(root), cwd=git_repo).returncode == 1
    assert report(root)["tasks"]["task-002"]["conflicts"][0]["action"] == "stop"
    bad = cpo("run", str(root), "--resume", "--on-conflict", "merge", cwd=git_repo)
    assert bad.returncode == 2
    assert "--on-conflict merge: choose rerun, resolve or stop" in bad.stderr


# -- the scheduler alone ------------------------------------------------------------------
class RerunOnce(FakeHooks):
    """Fake hooks whose first merge of each task in `rerun` asks for a rerun."""

    def __init__(self, rerun: set[str]) -> None:
        super().__init__()
        self.rerun = set(rerun)

    def merge_task(self, task: TaskSpec) -> bool | str:  # type: ignore[override]
        if task.id in self.rerun:
            self.rerun.discard(task.id)
            self._log("merge", task.id)
            return RERUN
        return super().merge_task(task)


@pytest.mark.parametrize("mode", ["waves", "dag"])
def test_the_scheduler_runs_a_task_again_when_its_merge_asks(mode: str) -> None:
    plan = make_plan({"a": (1, []), "b": (1, []), "c": (2, ["b"])})
    hooks = RerunOnce({"b"})
    result = run_schedule(plan, hooks, max_concurrent=2, mode=mode)  # type: ignore[arg-type]
    assert result.status == "completed" and result.merged == {"a", "b", "c"}
    starts = [what for kind, what in hooks.events if kind == "start"]
    assert starts.count("b") == 2 and starts.count("a") == 1
    ev = hooks.events
    # Its dependent starts only once the rerun is merged.
    assert ev.index(("start", "c")) > max(i for i, e in enumerate(ev) if e == ("merge", "b"))


def test_only_paths_that_meet_can_conflict() -> None:
    assert clash(["a/b.py", "c.py"], ["c.py"])
    assert clash(["docs"], ["docs/index.md"])  # a file where the other has a folder
    assert clash(["docs/index.md"], ["docs"])
    assert not clash(["a/b.py"], ["a/c.py", "b.py"])


def test_generated_scripts_keep_on_conflict() -> None:
    assert run_flags(RunOptions(on_conflict="resolve")) == ["--on-conflict", "resolve"]


def test_resume_refuses_a_resolution_cut_short_with_markers(git_repo: Path) -> None:
    # The resolver commits the markers, then works on: cpo is killed before its check.
    script = "@script resolve commit left the markers in\n@script resolve sleep 60"
    root = two_writers(git_repo, f"{SECOND}\n{script}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cpo", "run", str(root), "--on-conflict", "resolve"],
        cwd=git_repo,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: last_subject(git_repo, "integration/TS-0042"), "left the markers")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert report(root)["tasks"]["task-002"]["conflicts"][-1]["outcome"] == "resolving"
    resumed = cpo("run", str(root), "--resume", "--on-conflict", "resolve", cwd=git_repo)
    assert resumed.returncode == 2
    said = "task-002: its conflict resolver was stopped with conflict markers committed in "
    assert said + "shared.txt on integration/TS-0042" in resumed.stderr
    assert "reset --hard" in resumed.stderr
