"""`cpo run` when things go wrong, end to end with the scripted claude: each failure is
classified, reported, shown in the progress lines, and never touches the base branch."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import jsonschema
import pytest

from cpo.run.engine import execute
from cpo.run.options import RunOptions
from cpo.run.report import report_schema
from tests.conftest import git
from tests.runkit import cpo, make_spec, repo_state, report

pytestmark = pytest.mark.usefixtures("fake_claude")

OK = "@script write {f} {t}\n@script commit add {f}\n@script marker"


def ok(f: str, t: str = "x") -> str:
    return OK.format(f=f, t=t)


def progress(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("[PROGRESS]")]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose: read its state.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_missing_marker_fails_task(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": "@script write a.txt a\n@script commit a"}])
    before = repo_state(git_repo)
    proc = cpo("run", str(root), "--nudges", "0", cwd=git_repo)
    assert proc.returncode == 1
    t = report(root)["tasks"]["task-001"]
    assert (t["status"], t["reason"]) == ("failed", "no_completion_marker")
    assert t["commits"] == 1  # the work is kept on the branch
    assert "[PROGRESS] wave=1 task=task-001 status=failed error=no_completion_marker" in (
        progress(proc.stdout)
    )
    assert report(root)["status"] == "failed"
    assert "--retry-failed" in report(root)["next_step"]
    assert repo_state(git_repo) == before
    # Checked out in the background at set-up; whole when the run ends, merges or none.
    integration = Path(report(root)["integration_worktree"])
    assert git(integration, "status", "--porcelain") == ""
    assert (integration / "README.md").is_file()


def test_agent_error_result(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": "@script error the tests would not pass"}])
    proc = cpo("run", str(root), cwd=git_repo)
    assert proc.returncode == 1
    t = report(root)["tasks"]["task-001"]
    assert t["reason"] == "agent_error"
    assert "the tests would not pass" in t["error"]


def test_leftover_changes_committed_by_cpo(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": "@script write notes.txt hi\n@script marker"}])
    assert cpo("run", str(root), cwd=git_repo).returncode == 0
    t = report(root)["tasks"]["task-001"]
    assert t["leftovers_committed"] is True and t["commits"] == 1
    msg = git(git_repo, "log", "-1", "--format=%s", t["branch"])
    assert msg == "cpo: uncommitted changes left by task-001"


def test_timeout_kills_whole_process_group(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": "@script spawn-child 300\n@script hang"}])
    proc = cpo("run", str(root), "--timeout", "2", cwd=git_repo)
    assert proc.returncode == 1
    t = report(root)["tasks"]["task-001"]
    assert t["reason"] == "timeout"
    child = int((Path(t["worktree"]) / ".child-pid").read_text())
    deadline = time.monotonic() + 5
    while pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(child), "the agent's child outlived the run"


def test_merge_conflict_between_two_tasks(git_repo: Path) -> None:
    root = make_spec(
        git_repo,
        [
            {"task-001": ok("shared.txt", "one"), "task-002": ok("shared.txt", "two")},
            {"task-003": ok("c.txt")},
        ],
        deps={"task-003": ["task-002"]},
    )
    before = repo_state(git_repo)
    proc = cpo("run", str(root), "--on-conflict", "stop", cwd=git_repo)  # the default reruns
    assert proc.returncode == 1
    data = report(root)
    t1, t2 = data["tasks"]["task-001"], data["tasks"]["task-002"]
    assert t1["status"] == "completed" and t1["merged"]
    assert (t2["status"], t2["reason"]) == ("failed", "conflict")
    assert t2["conflict_files"] == ["shared.txt"]
    assert data["tasks"]["task-003"]["reason"] == "dependency_failed"
    assert data["waves"][0]["status"] == "failed"
    # The merge was aborted: the integration worktree is clean, at task-001's merge.
    integ = Path(data["integration_worktree"])
    assert git(integ, "status", "--porcelain") == ""
    assert (integ / "shared.txt").read_text() == "one"
    assert repo_state(git_repo) == before


def test_failed_validation_stops_the_run(git_repo: Path) -> None:
    root = make_spec(
        git_repo,
        [{"task-001": ok("a.txt")}, {"task-002": ok("b.txt")}],
        validation={1: "echo checking; exit 3"},
    )
    proc = cpo("run", str(root), cwd=git_repo)
    assert proc.returncode == 1
    data = report(root)
    assert data["waves"][0]["status"] == "failed"
    assert data["waves"][0]["validation_exit_code"] == 3
    assert "checking" in data["waves"][0]["validation_output_tail"]
    assert data["tasks"]["task-002"]["status"] == "skipped"
    assert data["tasks"]["task-002"]["reason"] == "validation"
    assert "[PROGRESS] wave=1 status=failed tasks=1/1" in progress(proc.stdout)
    assert (root / "logs" / "wave-1-validation.log").exists()


def test_python_validation_imports_merged_code(git_repo: Path) -> None:
    root = make_spec(
        git_repo,
        [{"task-001": ok("pkg/__init__.py", "VALUE = 42")}],
        validation={1: "from pkg import VALUE; assert VALUE == 42; print('Wave 1 OK')"},
    )
    assert cpo("run", str(root), cwd=git_repo).returncode == 0
    assert "Wave 1 OK" in report(root)["waves"][0]["validation_output_tail"]


def test_fail_fast_stops_running_agents(git_repo: Path) -> None:
    root = make_spec(
        git_repo,
        [
            {
                "task-001": "@script sleep 0.5\n@script error broken",
                "task-002": "@script sleep 60\n@script marker",
                "task-003": ok("c.txt"),
            },
            {"task-004": ok("d.txt")},
        ],
    )
    proc = cpo("run", str(root), "--fail-fast", "--max-concurrent", "2", cwd=git_repo)
    assert proc.returncode == 1
    tasks = report(root)["tasks"]
    assert tasks["task-001"]["reason"] == "agent_error"
    assert tasks["task-002"]["status"] == "interrupted"
    assert tasks["task-003"]["reason"] == "fail_fast"
    assert tasks["task-004"]["reason"] == "fail_fast"


def test_dag_starts_task_before_its_wave_predecessors_all_end(git_repo: Path) -> None:
    root = make_spec(
        git_repo,
        [
            {"task-001": ok("a.txt"), "task-slow": "@script sleep 3\n" + ok("s.txt")},
            {"task-002": "@script require a.txt\n" + ok("b.txt")},
        ],
        deps={"task-002": ["task-001"]},
    )
    proc = cpo("run", str(root), "--schedule", "dag", "--max-concurrent", "3", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = progress(proc.stdout)
    started_2 = lines.index("[PROGRESS] wave=2 task=task-002 status=started")
    slow_done = lines.index("[PROGRESS] wave=1 task=task-slow status=completed commits=1")
    assert started_2 < slow_done


def test_dry_run_changes_nothing(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": ok("a.txt")}, {"task-002": ok("b.txt")}])
    refs = git(git_repo, "for-each-ref")
    trees = git(git_repo, "worktree", "list", "--porcelain")
    before = repo_state(git_repo)
    files = sorted(p.name for p in root.rglob("*"))
    proc = cpo("run", str(root), "--dry-run", cwd=git_repo)
    assert proc.returncode == 0, proc.stderr
    assert "task-001 →" in proc.stdout and "feature/TS-0042/task-001" in proc.stdout
    assert "integration/TS-0042" in proc.stdout
    assert "dry run: nothing was changed" in proc.stdout
    assert git(git_repo, "for-each-ref") == refs
    assert git(git_repo, "worktree", "list", "--porcelain") == trees
    assert repo_state(git_repo) == before
    assert sorted(p.name for p in root.rglob("*")) == files
    assert not (git_repo.parent / "workspaces" / "repo" / "TS-0042" / "task-001").exists()


def test_wave_option_runs_one_wave_after_another(git_repo: Path) -> None:
    root = make_spec(
        git_repo,
        [{"task-001": ok("a.txt")}, {"task-002": "@script require a.txt\n" + ok("b.txt")}],
        deps={"task-002": ["task-001"]},
    )
    early = cpo("run", str(root), "--wave", "2", cwd=git_repo)
    assert early.returncode == 2
    assert "earlier waves are not merged" in early.stderr and "task-001" in early.stderr
    first = cpo("run", str(root), "--wave", "1", cwd=git_repo)
    assert first.returncode == 0, first.stdout + first.stderr
    assert report(root)["tasks"]["task-002"]["status"] == "skipped"
    head_1 = git(git_repo, "rev-parse", "feature/TS-0042/task-001")
    second = cpo("run", str(root), "--wave", "2", cwd=git_repo)
    assert second.returncode == 0, second.stdout + second.stderr
    data = report(root)
    assert data["tasks"]["task-002"]["status"] == "completed"
    assert data["tasks"]["task-001"]["status"] == "completed"
    assert git(git_repo, "rev-parse", "feature/TS-0042/task-001") == head_1  # not re-run
    assert "task=task-001" not in second.stdout


def test_skip_option(git_repo: Path) -> None:
    root = make_spec(
        git_repo,
        [{"task-001": ok("a.txt"), "task-002": ok("b.txt")}, {"task-003": ok("c.txt")}],
        deps={"task-003": ["task-002"]},
    )
    proc = cpo("run", str(root), "--skip", "task-002", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tasks = report(root)["tasks"]
    assert (tasks["task-002"]["status"], tasks["task-002"]["reason"]) == ("skipped", "not_selected")
    assert tasks["task-003"]["reason"] == "dependency_skipped"
    assert tasks["task-001"]["status"] == "completed"
    bad = cpo("run", str(root), "--skip", "nope", "--dry-run", cwd=git_repo)
    assert bad.returncode == 2 and "no task 'nope'" in bad.stderr


def test_preflight_refuses_dirty_tree_and_foreign_branch(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": ok("a.txt")}])
    (git_repo / "README.md").write_text("changed\n")
    proc = cpo("run", str(root), cwd=git_repo)
    assert proc.returncode == 2
    assert "uncommitted changes (README.md)" in proc.stderr and "--allow-dirty" in proc.stderr
    git(git_repo, "checkout", "README.md")
    git(git_repo, "branch", "feature/TS-0042/task-001")
    proc = cpo("run", str(root), cwd=git_repo)
    assert proc.returncode == 2
    assert "branch feature/TS-0042/task-001 already exists" in proc.stderr
    assert not (root / "report.json").exists()


def test_unknown_backend_and_missing_agent_cli(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_spec(git_repo, [{"task-001": ok("a.txt")}])
    proc = cpo("run", str(root), "--backend", "nope", cwd=git_repo)
    assert proc.returncode == 2 and "unknown backend 'nope'" in proc.stderr
    proc = cpo("run", str(root), cwd=git_repo, env={"CPO_CLAUDE_BIN": "claude-not-installed"})
    assert proc.returncode == 2 and "claude-not-installed" in proc.stderr


def test_report_valid_against_schema_at_every_write(git_repo: Path) -> None:
    root = make_spec(
        git_repo,
        [{"task-001": ok("a.txt"), "task-002": "@script error no"}, {"task-003": ok("c.txt")}],
    )
    validator = jsonschema.Draft202012Validator(report_schema())
    versions: list[str] = []
    result = execute(root, RunOptions(max_concurrent=2), on_report_write=versions.append)
    assert len(versions) >= 2  # coalesced: a few whole versions, each valid
    for text in versions:
        validator.validate(json.loads(text))
    assert result.report.status == "failed"
    assert json.loads(versions[-1])["status"] == "failed"
    # The manifest gained an execution block; its other keys kept their order.
    manifest = json.loads((root / "manifest.json").read_text())
    assert list(manifest)[:3] == ["tech_spec_id", "name", "waves"]
    assert manifest["execution"]["status"] == "failed"
    assert manifest["execution"]["failed_tasks"] == ["task-002"]


def test_json_output(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": ok("a.txt")}])
    proc = cpo("run", str(root), "--json", cwd=git_repo)
    assert proc.returncode == 0
    doc = json.loads(proc.stdout)
    assert doc["status"] == "completed" and doc["tasks"][0]["id"] == "task-001"
    assert "[PROGRESS]" not in proc.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="the claude CLI's root rule applies to root only")
def test_root_without_is_sandbox_is_stopped_before_launch(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_spec(git_repo, [{"task-001": ok("a.txt")}])
    monkeypatch.delenv("IS_SANDBOX")
    proc = cpo("run", str(root), cwd=git_repo)
    assert proc.returncode == 2
    assert "IS_SANDBOX=1" in proc.stderr and "acceptEdits" in proc.stderr
    assert not (root / "report.json").exists()


def test_quiet_prints_only_the_summary(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": ok("a.txt")}])
    proc = cpo("run", str(root), "--quiet", cwd=git_repo)
    assert proc.returncode == 0
    assert "[PROGRESS]" not in proc.stdout
    assert proc.stdout.splitlines()[0].startswith("TS-0042: completed — 1/1 tasks completed")


def test_live_table_on_a_terminal(git_repo: Path) -> None:
    """With stdout a terminal, the live table replaces the [PROGRESS] lines."""
    import pty
    import subprocess
    import sys

    root = make_spec(git_repo, [{"task-001": ok("a.txt"), "task-002": ok("b.txt")}])
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cpo", "run", str(root)],
        cwd=git_repo,
        stdout=follower,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "120"},
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    screen = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0
    assert "[PROGRESS]" not in screen
    assert "last action" in screen and "task-002" in screen and "completed" in screen
