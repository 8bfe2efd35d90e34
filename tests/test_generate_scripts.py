"""`cpo run --generate-only`: the scripts it writes, and that they really run the spec."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.runkit import cpo, make_spec, report

pytestmark = pytest.mark.usefixtures("fake_claude")


def _ok(name: str) -> str:
    return f"@script write {name} {name}\n@script commit add {name}\n@script marker"


def _env_with_cpo() -> dict[str, str]:
    """PATH with this interpreter's bin folder first, where the `cpo` entry point lives."""
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "cpo").exists(), "the cpo entry point must be installed (pip install -e .)"
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def test_scripts_are_written_and_executable(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": _ok("a.txt")}])
    proc = cpo("run", str(root), "--generate-only", cwd=git_repo)
    assert proc.returncode == 0, proc.stderr
    for name in ("run-parallel.sh", "monitor-live.sh"):
        path = root / "scripts" / name
        assert f"wrote {path}" in proc.stdout
        assert os.access(path, os.X_OK)
        assert path.read_text().startswith("#!/usr/bin/env bash\n")
        assert subprocess.run(["bash", "-n", str(path)], check=False).returncode == 0
    assert not (root / "report.json").exists()  # nothing was run


def test_run_parallel_sh_runs_the_spec_to_completion(git_repo: Path) -> None:
    root = make_spec(
        git_repo,
        [{"task-001": _ok("a.txt"), "task-002": _ok("b.txt")}, {"task-003": _ok("c.txt")}],
        deps={"task-003": ["task-001"]},
        validation={1: "test -f a.txt && test -f b.txt"},
    )
    assert cpo("run", str(root), "--generate-only", cwd=git_repo).returncode == 0
    env = _env_with_cpo()
    # from another folder, with extra options passed through to `cpo run`
    run = subprocess.run(
        [str(root / "scripts" / "run-parallel.sh"), "--max-concurrent", "1"],
        cwd=git_repo.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "[PROGRESS] execution status=completed" in run.stdout
    data = report(root)
    assert data["status"] == "completed"
    assert data["options"]["max_concurrent"] == 1
    assert all(t["merged"] for t in data["tasks"].values())

    monitor = subprocess.run(
        [str(root / "scripts" / "monitor-live.sh")],
        cwd=git_repo.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert monitor.returncode == 0, monitor.stderr
    assert "3/3 tasks completed" in monitor.stdout


def test_generate_only_refuses_an_invalid_directory(git_repo: Path) -> None:
    root = git_repo / "parallel" / "broken"
    root.mkdir(parents=True)
    (root / "manifest.json").write_text("{not json")
    proc = cpo("run", str(root), "--generate-only", cwd=git_repo)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert not (root / "scripts").exists()
