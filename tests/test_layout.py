"""Branch and worktree names (cpo.run.layout): namespaced by spec so that specs and
sibling repositories never collide, kept from the report when a run continues."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from cpo.plan.names import ref_clash, task_branch
from tests.conftest import git
from tests.runkit import cpo, make_spec, report

pytestmark = pytest.mark.usefixtures("fake_claude")


def _ok(name: str) -> str:
    return (
        f"@script write {name} {name}\n@script sleep 0.2\n@script commit add {name}\n@script marker"
    )


def _branches(repo: Path) -> set[str]:
    return set(git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads").split())


def test_names() -> None:
    assert task_branch("TS-1", "task-001", "users") == "feature/TS-1/task-001-users"
    assert task_branch("TS-1", "task-001-users", "users") == "feature/TS-1/task-001-users"
    assert task_branch(None, "task-001", None) == "feature/task-001"
    assert ref_clash("feature/TS-1/task-001", {"main", "feature/TS-1"}) == "feature/TS-1"
    assert ref_clash("feature/TS-1", {"feature/TS-1/x"}) == "feature/TS-1/x"
    assert ref_clash("feature/TS-1/task-001", {"feature/TS-10", "feature/TS-1/task-001"}) is None


def test_two_specs_with_the_same_task_ids_run_at_once(git_repo: Path) -> None:
    """Every decomposition numbers its tasks from task-001: two of them run side by side."""
    for round_no in range(3):
        roots = [
            make_spec(
                git_repo,
                [{"task-001": _ok(f"{s}{round_no}-1.txt"), "task-002": _ok(f"{s}{round_no}-2")}],
                spec_id=f"TS-{s}{round_no}",
            )
            for s in "AB"
        ]
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "cpo", "run", str(root)],
                cwd=git_repo,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for root in roots
        ]
        outs = [p.communicate(timeout=120) for p in procs]
        for proc, (out, err) in zip(procs, outs, strict=True):
            assert proc.returncode == 0, out + err
        for root, s in zip(roots, "AB", strict=True):
            spec = f"TS-{s}{round_no}"
            data = report(root)
            assert data["status"] == "completed"
            task = data["tasks"]["task-001"]
            assert task["branch"] == f"feature/{spec}/task-001"
            ws = git_repo.parent / "workspaces" / git_repo.name / spec
            assert task["worktree"] == str(ws / "task-001")
            assert data["integration_worktree"] == str(ws / "integration")
    # And `cpo clean` finds each spec's own run.
    proc = cpo("clean", str(git_repo / "parallel" / "TS-B2"), cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "feature/TS-B2/task-001" not in _branches(git_repo)
    assert "feature/TS-A2/task-001" in _branches(git_repo)


def test_sibling_repositories_get_their_own_workspace_folders(tmp_path: Path) -> None:
    worktrees = []
    for name in ("one", "two"):
        repo = tmp_path / name
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        (repo / "README.md").write_text(name)
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "initial")
        root = make_spec(repo, [{"task-001": _ok("a.txt")}])
        proc = cpo("run", str(root), cwd=repo)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        worktrees.append(report(root)["tasks"]["task-001"]["worktree"])
    assert worktrees == [
        str(tmp_path / "workspaces" / "one" / "TS-0042" / "task-001"),
        str(tmp_path / "workspaces" / "two" / "TS-0042" / "task-001"),
    ]


def test_workspace_root_inside_the_repo_then_resume_and_integrate(git_repo: Path) -> None:
    root = make_spec(
        git_repo, [{"task-001": _ok("a.txt"), "task-002": "@script error flaky"}], validation={}
    )
    proc = cpo("run", str(root), "--workspace-root", "ws", cwd=git_repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert (git_repo / "ws").is_dir()
    task_file = root / "tasks" / "task-002.md"
    task_file.write_text(task_file.read_text().replace("@script error flaky", _ok("b.txt")))
    git(git_repo, "commit", "-qam", "fix task-002")
    proc = cpo("run", str(root), "--retry-failed", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = cpo("integrate", str(root), "--allow-checkout-merge", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (git_repo / "b.txt").exists()


def test_resume_keeps_the_recorded_workspace_root(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": _ok("a.txt"), "task-002": "@script error flaky"}])
    proc = cpo("run", str(root), "--workspace-root", "../elsewhere", cwd=git_repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    elsewhere = git_repo.parent / "elsewhere"
    assert report(root)["workspace_root"] == str(elsewhere)
    next_line = next(line for line in proc.stdout.splitlines() if line.startswith("next:"))
    command = next_line.split("then: ", 1)[1]

    before = (root / "report.json").read_bytes()
    proc = cpo("run", str(root), "--resume", "--workspace-root", "../other", cwd=git_repo)
    assert proc.returncode == 2
    assert f"the run being continued has its worktrees under {elsewhere}" in proc.stderr
    proc = cpo("run", str(root), "--resume", "--schedule", "dag", cwd=git_repo)
    assert proc.returncode == 2
    assert "--schedule dag: the run being continued was scheduled waves" in proc.stderr
    assert (root / "report.json").read_bytes() == before
    assert not (git_repo.parent / "other").exists()

    task_file = root / "tasks" / "task-002.md"
    task_file.write_text(task_file.read_text().replace("@script error flaky", _ok("b.txt")))
    git(git_repo, "commit", "-qam", "fix task-002")
    args = shlex.split(command)
    assert args[:2] == ["cpo", "run"]
    proc = cpo(*args[1:], cwd=git_repo)  # the next: line, as pasted
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = report(root)
    assert data["workspace_root"] == str(elsewhere)
    assert data["tasks"]["task-002"]["worktree"] == str(elsewhere / "TS-0042" / "task-002")
    assert not (git_repo.parent / "workspaces").exists()


def test_a_resume_that_cannot_start_leaves_the_report_alone(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": _ok("a.txt"), "task-002": "@script error flaky"}])
    assert cpo("run", str(root), cwd=git_repo).returncode == 1
    integ = Path(report(root)["integration_worktree"])
    git(git_repo, "worktree", "remove", str(integ))
    integ.write_text("a file of the user's where the integration worktree was\n")
    before = (root / "report.json").read_bytes()
    proc = cpo("run", str(root), "--resume", cwd=git_repo)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert (root / "report.json").read_bytes() == before


def _to_old_layout(repo: Path, root: Path) -> Path:
    """Rename and move a finished run's branches and worktrees to the names cpo gave them
    before they were namespaced (`feature/<id>`, `../workspaces/<id>`), and record those
    in its report, as an older cpo would have."""
    data = report(root)
    old_root = repo.parent / "workspaces"
    for rec in data["tasks"].values():
        old_branch, old_wt = f"feature/{rec['id']}", old_root / rec["id"]
        git(repo, "branch", "-m", rec["branch"], old_branch)
        git(repo, "worktree", "move", rec["worktree"], str(old_wt))
        rec["branch"], rec["worktree"] = old_branch, str(old_wt)
    old_integ = old_root / f"{data['spec_id']}-integration"
    git(repo, "worktree", "move", data["integration_worktree"], str(old_integ))
    data["integration_worktree"] = str(old_integ)
    data["workspace_root"] = str(old_root)
    data["options"].pop("branch_names")
    (root / "report.json").write_text(json.dumps(data, indent=2))
    return old_root


def test_a_run_recorded_under_the_old_names_resumes_and_cleans(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": _ok("a.txt"), "task-002": "@script error flaky"}])
    assert cpo("run", str(root), cwd=git_repo).returncode == 1
    old_root = _to_old_layout(git_repo, root)
    task_file = root / "tasks" / "task-002.md"
    task_file.write_text(task_file.read_text().replace("@script error flaky", _ok("b.txt")))
    git(git_repo, "commit", "-qam", "fix task-002")

    proc = cpo("run", str(root), "--retry-failed", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = report(root)
    assert data["tasks"]["task-002"]["branch"] == "feature/task-002"
    assert data["tasks"]["task-002"]["worktree"] == str(old_root / "task-002")
    assert not [b for b in _branches(git_repo) if b.startswith("feature/TS-0042")]
    files = git(git_repo, "ls-tree", "-r", "--name-only", "integration/TS-0042").split()
    assert {"a.txt", "b.txt"} <= set(files)

    proc = cpo("clean", str(root), cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _branches(git_repo) == {"main", "integration/TS-0042"}
    assert not [p for p in old_root.iterdir() if p.name.startswith(("task-", "TS-0042-"))]


def test_a_branch_named_like_the_spec_folder_is_refused(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": _ok("a.txt"), "task-002": _ok("b.txt")}])
    git(git_repo, "branch", "feature/TS-0042")
    proc = cpo("run", str(root), cwd=git_repo)
    assert proc.returncode == 2
    assert (
        "branch feature/TS-0042 exists, so git cannot create feature/TS-0042/task-001, "
        "feature/TS-0042/task-002 (a branch name cannot also be a folder of branches)"
    ) in proc.stderr
    assert "git branch -m feature/TS-0042 <new-name>" in proc.stderr


def test_plain_branch_names_on_request_and_their_collision_refused(git_repo: Path) -> None:
    plain = {"branch_names": "plain"}
    first = make_spec(git_repo, [{"task-001": _ok("a.txt")}], spec_id="TS-A", extra=plain)
    assert cpo("run", str(first), cwd=git_repo).returncode == 0
    assert report(first)["tasks"]["task-001"]["branch"] == "feature/task-001"
    second = make_spec(git_repo, [{"task-001": _ok("b.txt")}], spec_id="TS-B", extra=plain)
    proc = cpo("run", str(second), cwd=git_repo)
    assert proc.returncode == 2
    assert "branch feature/task-001 already exists" in proc.stderr
    assert "remove that key so branches carry the spec id" in proc.stderr
    # Without the key the same ids do not collide.
    third = make_spec(git_repo, [{"task-001": _ok("c.txt")}], spec_id="TS-C")
    assert cpo("run", str(third), cwd=git_repo).returncode == 0


def test_a_misspelt_branch_names_value_is_one_line(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": "x"}], extra={"branch_names": "flat"})
    proc = cpo("validate", str(root), cwd=git_repo)
    assert proc.returncode == 1
    assert "manifest.json: branch_names" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_resume_of_a_dag_run_refuses_an_explicit_waves_and_keeps_dag(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": _ok("a.txt"), "task-002": "@script error flaky"}])
    proc = cpo("run", str(root), "--schedule", "dag", cwd=git_repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    proc = cpo("run", str(root), "--resume", "--schedule", "waves", cwd=git_repo)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "--schedule waves: the run being continued was scheduled dag" in proc.stderr
    task_file = root / "tasks" / "task-002.md"
    task_file.write_text(task_file.read_text().replace("@script error flaky", _ok("b.txt")))
    git(git_repo, "commit", "-qam", "fix task-002")
    proc = cpo("run", str(root), "--retry-failed", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert report(root)["options"]["schedule"] == "dag"
