"""Run control and recovery with real processes: interrupt, kill -9 and resume, retries,
auth stops launches, idle timeout, the run lock, secrets kept out of logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import git
from tests.runkit import cpo, make_spec, report

pytestmark = pytest.mark.usefixtures("fake_claude")


def ok(f: str, t: str = "x") -> str:
    return f"@script write {f} {t}\n@script commit add {f}\n@script marker"


def start_cpo(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cpo", "run", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def agent_pids(worktree_root: Path) -> list[int]:
    """Processes whose working directory is inside the workspaces folder."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if cwd.startswith(str(worktree_root)) and alive(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def running(root: Path, task: str) -> bool:
    return report(root)["tasks"][task]["status"] == "running"


def test_ctrl_c_stops_agents_and_reports_interrupted(git_repo: Path) -> None:
    root = make_spec(
        git_repo,
        [
            {"task-001": "@script spawn-child 300\n@script hang", "task-002": ok("b.txt")},
            {"task-003": ok("c.txt")},
        ],
    )
    proc = start_cpo(str(root), "--max-concurrent", "2", cwd=git_repo)
    wait_for(lambda: (Path(report(root)["tasks"]["task-001"]["worktree"]) / ".child-pid").exists())
    child = int((Path(report(root)["tasks"]["task-001"]["worktree"]) / ".child-pid").read_text())
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    data = report(root)
    assert data["status"] == "interrupted"
    assert data["tasks"]["task-001"]["status"] == "interrupted"
    assert data["tasks"]["task-003"]["status"] == "pending"  # left for --resume
    assert "--resume" in data["next_step"]
    wait_for(lambda: not alive(child), timeout=10)
    assert agent_pids(git_repo.parent / "workspaces") == []
    assert not (root / ".cpo.lock").exists()


def test_kill_9_then_resume_finishes_without_redoing_completed(git_repo: Path) -> None:
    root = make_spec(
        git_repo,
        [
            {"task-001": ok("a.txt"), "task-002": "@script spawn-child 300\n@script hang"},
            {"task-003": ok("c.txt")},
        ],
    )
    proc = start_cpo(str(root), "--max-concurrent", "2", cwd=git_repo)
    wait_for(
        lambda: (
            report(root)["tasks"]["task-001"]["status"] == "completed"
            and running(root, "task-002")
            and (Path(report(root)["tasks"]["task-002"]["worktree"]) / ".child-pid").exists()
        )
    )
    child = int((Path(report(root)["tasks"]["task-002"]["worktree"]) / ".child-pid").read_text())
    head_1 = git(git_repo, "rev-parse", "feature/TS-0042/task-001")
    proc.kill()
    proc.communicate()
    # The watchdog notices cpo is gone and kills the agent's whole group.
    wait_for(lambda: not alive(child), timeout=15)
    wait_for(lambda: agent_pids(git_repo.parent / "workspaces") == [], timeout=15)
    # Make the hanging task finish this time (a changed prompt re-runs it anyway).
    task_file = root / "tasks" / "task-002.md"
    task_file.write_text(
        task_file.read_text().replace("@script spawn-child 300\n@script hang", ok("b.txt"))
    )
    git(git_repo, "commit", "-qam", "fix task-002")
    resumed = cpo("run", str(root), "--resume", cwd=git_repo)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "took over the run lock" in resumed.stderr
    data = report(root)
    assert data["status"] == "completed"
    assert git(git_repo, "rev-parse", "feature/TS-0042/task-001") == head_1  # not re-run
    assert "task=task-001 status=started" not in resumed.stdout
    assert len(data["tasks"]["task-002"]["attempts"]) == 2  # history kept
    files = git(git_repo, "ls-tree", "-r", "--name-only", "integration/TS-0042").split()
    assert {"a.txt", "b.txt", "c.txt"} <= set(files)


def test_changed_task_runs_again_on_resume(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": ok("a.txt", "one"), "task-002": ok("b.txt")}])
    assert cpo("run", str(root), cwd=git_repo).returncode == 0
    head_2 = git(git_repo, "rev-parse", "feature/TS-0042/task-002")
    old_1 = git(git_repo, "rev-parse", "feature/TS-0042/task-001")
    task_file = root / "tasks" / "task-001.md"
    task_file.write_text(task_file.read_text().replace("a.txt one", "a2.txt two"))
    git(git_repo, "commit", "-qam", "change task-001")
    proc = cpo("run", str(root), "--resume", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "task-001 changed since it ran" in proc.stderr
    assert "task=task-001 status=started" in proc.stdout
    assert "task=task-002 status=started" not in proc.stdout
    assert git(git_repo, "rev-parse", "feature/TS-0042/task-002") == head_2
    # The first version's work was merged already, so the new run builds on top of it.
    assert git(git_repo, "merge-base", "--is-ancestor", old_1, "feature/TS-0042/task-001") == ""
    files = git(git_repo, "ls-tree", "-r", "--name-only", "integration/TS-0042").split()
    assert {"a.txt", "a2.txt", "b.txt"} <= set(files)


def test_failed_attempt_work_is_kept_on_an_attempt_branch(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": "@script write a.txt one\n@script commit a"}])
    assert cpo("run", str(root), "--nudges", "0", cwd=git_repo).returncode == 1  # no marker
    first = git(git_repo, "rev-parse", "feature/TS-0042/task-001")
    proc = cpo("run", str(root), "--retry-failed", "--nudges", "0", cwd=git_repo)
    assert proc.returncode == 1
    saved = report(root)["tasks"]["task-001"]["attempts"][0]["saved_branch"]
    assert saved and git(git_repo, "rev-parse", saved) == first


def test_retry_failed_reruns_only_failed_and_blocked(git_repo: Path) -> None:
    root = make_spec(
        git_repo,
        [{"task-001": ok("a.txt"), "task-002": "@script error flaky"}, {"task-003": ok("c.txt")}],
        deps={"task-003": ["task-002"]},
    )
    assert cpo("run", str(root), cwd=git_repo).returncode == 1
    task_file = root / "tasks" / "task-002.md"
    task_file.write_text(task_file.read_text().replace("@script error flaky", ok("b.txt")))
    git(git_repo, "commit", "-qam", "fix task-002")
    proc = cpo("run", str(root), "--retry-failed", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "task=task-001 status=started" not in proc.stdout
    assert "task=task-003 status=started" in proc.stdout


def test_second_concurrent_run_refused_and_stale_lock_taken_over(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": "@script sleep 30\n@script marker"}])
    first = start_cpo(str(root), cwd=git_repo)
    wait_for(lambda: running(root, "task-001"))
    second = cpo("run", str(root), "--resume", cwd=git_repo)
    assert second.returncode == 2
    assert f"pid {first.pid}" in second.stderr and "started" in second.stderr
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=30)
    # A lock left by a dead process is taken over, and said so.
    (root / ".cpo.lock").write_text(
        json.dumps(
            {"pid": 999999, "host": os.uname().nodename, "started_at": "2026-01-01T00:00:00+00:00"}
        )
    )
    third = cpo("run", str(root), "--resume", "--dry-run", cwd=git_repo)
    assert third.returncode == 0
    resumed = cpo("run", str(root), "--resume", "--timeout", "1", cwd=git_repo)
    assert "took over the run lock of pid 999999" in resumed.stderr


def test_overloaded_twice_then_success_is_retried(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": "@script overloaded-first 2\n" + ok("a.txt")}])
    proc = cpo("run", str(root), "--retry-delay", "0.1", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    t = report(root)["tasks"]["task-001"]
    assert [a["reason"] for a in t["attempts"]] == ["overloaded", "overloaded", None]
    assert t["status"] == "completed"


def test_persistent_overload_fails_after_retries(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": "@script overloaded"}])
    proc = cpo("run", str(root), "--retry-delay", "0.1", "--retries", "1", cwd=git_repo)
    assert proc.returncode == 1
    t = report(root)["tasks"]["task-001"]
    assert (t["status"], t["reason"]) == ("failed", "overloaded")
    assert len(t["attempts"]) == 2


def test_auth_failure_stops_further_launches(git_repo: Path) -> None:
    root = make_spec(
        git_repo,
        [
            {"task-001": "@script auth", "task-002": ok("b.txt"), "task-003": ok("c.txt")},
            {"task-004": ok("d.txt")},
        ],
    )
    proc = cpo("run", str(root), "--max-concurrent", "1", cwd=git_repo)
    assert proc.returncode == 1
    tasks = report(root)["tasks"]
    assert tasks["task-001"]["reason"] == "auth"
    assert all(
        tasks[t]["reason"] == "auth" and tasks[t]["status"] == "skipped"
        for t in ("task-002", "task-003", "task-004")
    )
    assert "task=task-002 status=started" not in proc.stdout


def test_idle_agent_killed_by_idle_timeout(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": "@script text working\n@script hang"}])
    proc = cpo("run", str(root), "--idle-timeout", "1.5", "--nudges", "0", cwd=git_repo)
    assert proc.returncode == 1
    assert report(root)["tasks"]["task-001"]["reason"] == "idle_timeout"


def test_secrets_never_reach_logs_or_report(git_repo: Path) -> None:
    secret = "sk-ant-test-0123456789abcdef"
    root = make_spec(
        git_repo, [{"task-001": f"@script text key is {secret}\n@script error leaked {secret}"}]
    )
    proc = cpo("run", str(root), cwd=git_repo, env={"ANTHROPIC_API_KEY": secret})
    assert proc.returncode == 1
    for path in [root / "report.json", *(root / "logs").iterdir()]:
        assert secret not in path.read_text(), path
    assert secret not in proc.stdout + proc.stderr
    assert "****" in (root / "logs" / "task-001.log").read_text()


@pytest.mark.slow  # small form: test_git.py::test_concurrent_worktree_adds_are_serialised
def test_sixteen_concurrent_worktrees_without_lock_errors(git_repo: Path) -> None:
    tasks = {f"task-{i:03d}": ok(f"f{i}.txt", str(i)) for i in range(16)}
    for round_no in range(2):
        root = make_spec(git_repo, [tasks], spec_id=f"TS-{round_no}")
        proc = cpo(
            "run",
            str(root),
            "--max-concurrent",
            "16",
            "--workspace-root",
            f"../ws-{round_no}",
            cwd=git_repo,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        data = report(root)
        assert all(t["status"] == "completed" and t["merged"] for t in data["tasks"].values())
        # the second spec's tasks have the same ids: its branches carry its own spec id
        assert data["tasks"]["task-000"]["branch"] == f"feature/TS-{round_no}/task-000"


def test_usage_limit_pauses_launches_until_reset(git_repo: Path) -> None:
    reset = int(time.time()) + 1
    root = make_spec(git_repo, [{"task-001": f"@script usage-limit {reset}"}])
    versions: list[dict] = []  # type: ignore[type-arg]
    from cpo.run.engine import execute
    from cpo.run.options import RunOptions

    result = execute(
        root,
        RunOptions(retries=1, backoff_base=0.1),
        on_report_write=lambda text: versions.append(json.loads(text)),
    )
    t = result.report.tasks["task-001"]
    assert (t.status, t.reason) == ("failed", "usage_limit")
    assert len(t.attempts) == 2
    assert any(v.get("paused_until") for v in versions)  # shown in the status meanwhile
    assert time.time() >= reset  # the second attempt waited for the reset
    assert result.report.paused_until is None


def test_second_ctrl_c_kills_at_once(git_repo: Path) -> None:
    """An agent that ignores SIGTERM would get the grace period; a second Ctrl-C skips it."""
    root = make_spec(git_repo, [{"task-001": "@script ignore-term\n@script hang"}])
    proc = start_cpo(str(root), cwd=git_repo)
    wait_for(lambda: running(root, "task-001") and agent_pids(git_repo.parent / "workspaces"))
    time.sleep(0.3)  # let the agent install its SIGTERM handler
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    assert report(root)["tasks"]["task-001"]["status"] == "interrupted"
    assert agent_pids(git_repo.parent / "workspaces") == []
    log = (root / "logs" / "cpo.log").read_text()
    assert "signal 2 received (2): stopping agents" in log


def test_resume_after_a_crash_mid_merge_and_a_deleted_worktree(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": ok("same.txt", "one"), "task-002": ok("b.txt")}])
    assert cpo("run", str(root), "--skip", "task-002", cwd=git_repo).returncode == 0
    integ = Path(report(root)["integration_worktree"])
    # Leave a merge half done in the integration worktree, as a crash would.
    git(git_repo, "branch", "side", "main")
    side = git_repo.parent / "side"
    git(git_repo, "worktree", "add", "-q", str(side), "side")
    (side / "same.txt").write_text("two\n")
    git(side, "add", "-A")
    git(side, "commit", "-qm", "conflicting")
    subprocess.run(["git", "merge", "side"], cwd=integ, capture_output=True, check=False)
    assert git(integ, "rev-parse", "-q", "--verify", "MERGE_HEAD")
    proc = cpo("run", str(root), "--resume", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert report(root)["tasks"]["task-002"]["merged"]
    # And a worktree folder deleted by hand is recreated.
    import shutil

    shutil.rmtree(integ)
    task_file = root / "tasks" / "task-002.md"
    task_file.write_text(task_file.read_text().replace("b.txt x", "b.txt y"))
    git(git_repo, "commit", "-qam", "change task-002")
    proc = cpo("run", str(root), "--resume", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert integ.is_dir()


def test_rejected_key_stops_the_agent_at_the_first_retry(git_repo: Path) -> None:
    root = make_spec(
        git_repo,
        [{"task-001": "@script api-retry 401 10\n@script auth-401", "task-002": ok("b.txt")}],
    )
    proc = cpo(
        "run", str(root), "--max-concurrent", "1", cwd=git_repo, env={"CPO_FAKE_RETRY_DELAY": "2"}
    )
    assert proc.returncode == 1
    tasks = report(root)["tasks"]
    assert tasks["task-001"]["reason"] == "auth"
    assert "401" in tasks["task-001"]["error"]
    assert tasks["task-002"]["reason"] == "auth"  # not launched
    log = (root / "logs" / "task-001.log").read_text()
    assert log.count("API retry") == 1 and "stopping the agent: auth" in log


def test_api_retries_inside_one_run_then_success(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": "@script api-retry 529 2\n" + ok("a.txt")}])
    proc = cpo("run", str(root), cwd=git_repo, env={"CPO_FAKE_RETRY_DELAY": "0.05"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    t = report(root)["tasks"]["task-001"]
    assert len(t["attempts"]) == 1
    assert (root / "logs" / "task-001.log").read_text().count("API retry") == 2
