"""Local changes (cpo.run.changes): cpo's own outputs, of any spec, are never the user's
changes; a parallel directory's uncommitted files are named with the command that fixes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cpo.git import Git
from cpo.run.changes import uncommitted_plan_files, user_changes
from tests.conftest import git
from tests.runkit import cpo, make_spec


def _ok(name: str) -> str:
    return f"@script write {name} {name}\n@script commit add {name}\n@script marker"


def _spec_outputs(root: Path) -> None:
    """What a run of the spec at `root` leaves in its directory."""
    (root / "report.json").write_text("{}\n")
    (root / ".cpo.lock").write_text("")
    (root / "integration-report.md").write_text("# report\n")
    (root / ".report.json.0123456789ab").write_text("{")  # a write in flight
    (root / "logs").mkdir()
    (root / "logs" / "task-001.log").write_text("log\n")
    (root / "scripts").mkdir()
    (root / "scripts" / "run-parallel.sh").write_text("cpo run\n")  # --generate-only
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["execution"] = {"status": "running"}
    (root / "manifest.json").write_text(json.dumps(manifest) + "\n")  # reformatted, too


def test_outputs_of_every_spec_are_not_local_changes(git_repo: Path) -> None:
    make_spec(git_repo, [{"task-001": "x"}], spec_id="TS-A")
    other = make_spec(git_repo, [{"task-001": "x"}], spec_id="TS-B")
    _spec_outputs(git_repo / "parallel" / "TS-A")
    _spec_outputs(other)
    assert user_changes(Git(git_repo)) == []


def test_real_changes_still_count(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": "x"}])
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["name"] = "renamed"
    manifest["execution"] = {"status": "completed"}
    (root / "manifest.json").write_text(json.dumps(manifest))
    (git_repo / "docs").mkdir()
    (git_repo / "docs" / "report.json").write_text("{}")  # not in a parallel directory
    (git_repo / "README.md").write_text("changed\n")
    assert sorted(user_changes(Git(git_repo))) == [
        "README.md",
        "docs/report.json",
        "parallel/TS-0042/manifest.json",
    ]


def test_worktrees_under_a_workspace_root_inside_the_repo_are_not_changes(git_repo: Path) -> None:
    g = Git(git_repo)
    g.add_worktree(git_repo / "ws" / "TS-1" / "task-001", "feature/TS-1/task-001", "main")
    assert (git_repo / "ws" / "TS-1" / "task-001" / "README.md").exists()
    (git_repo / "ws" / ".cpo-write-test-4242").write_text("")  # another run's preflight
    assert user_changes(g) == []
    (git_repo / "ws" / "notes.txt").write_text("mine\n")
    assert user_changes(g) == ["ws/notes.txt"]


def test_uncommitted_plan_files_are_named(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": "x"}])
    _spec_outputs(root)
    assert uncommitted_plan_files(Git(git_repo), root) == []
    (root / "context.md").write_text("context\n")
    (root / "contracts").mkdir()
    (root / "contracts" / "types.py").write_text("X = 1\n")
    task = root / "tasks" / "task-001.md"
    task.write_text(task.read_text() + "more\n")
    assert sorted(uncommitted_plan_files(Git(git_repo), root)) == [
        "context.md",
        "contracts/types.py",
        "tasks/task-001.md",
    ]


@pytest.mark.usefixtures("fake_claude")
def test_run_refuses_an_uncommitted_plan_and_says_how_to_commit_it(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": _ok("a.txt")}], commit=False)
    (root / "context.md").write_text("read me\n")
    hint = "git add parallel/TS-0042 && git commit -m 'plan TS-0042'"
    missed = "TS-0042 has files that are not committed (context.md): agents work in worktrees"
    read = "TS-0042: manifest.json, tasks/task-001.md not committed: cpo reads them as they are"

    proc = cpo("validate", str(root), cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    said = proc.stdout + proc.stderr
    assert missed in said and read in said and hint in said

    proc = cpo("run", str(root), "--dry-run", cwd=git_repo)
    assert proc.returncode == 2, proc.stderr
    assert f"would stop the run: {missed}" in proc.stdout

    proc = cpo("run", str(root), cwd=git_repo)
    assert proc.returncode == 2
    assert missed in proc.stderr and hint in proc.stderr
    assert not (root / "report.json").exists()

    proc = cpo("run", str(root), "--allow-dirty", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert missed in proc.stderr and read in proc.stderr  # said, not refused

    # Once committed as the hint says, nothing is said.
    git(git_repo, "add", "parallel/TS-0042")
    git(git_repo, "commit", "-qm", "plan")
    proc = cpo("validate", str(root), cwd=git_repo)
    assert "not committed" not in proc.stdout + proc.stderr


@pytest.mark.usefixtures("fake_claude")
def test_an_edited_task_file_is_noted_not_refused(git_repo: Path) -> None:
    """cpo reads task files and prompts itself and hands the prompt to the agent: fixing a
    task and running again works without a commit, and is said."""
    root = make_spec(git_repo, [{"task-001": _ok("a.txt")}])
    task = root / "tasks" / "task-001.md"
    task.write_text(task.read_text().replace("a.txt", "b.txt"))
    proc = cpo("run", str(root), cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "TS-0042: tasks/task-001.md not committed: cpo reads them as they are" in proc.stderr
