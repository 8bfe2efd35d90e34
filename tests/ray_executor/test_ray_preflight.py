"""Preflight for `--executor ray` against a real cluster: each problem one line with its
fix, exit 2, nothing started."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from tests.executorkit import run_with
from tests.raycluster import RayHead, refusing_port
from tests.runkit import cpo, make_spec
from tests.workerkit import bare_remote


@pytest.fixture
def spec(git_repo: Path, fake_claude: Path) -> Path:
    return make_spec(git_repo, [{"task-001": "@script marker"}])


def problems(stderr: str) -> list[str]:
    return [line.removeprefix("error: ") for line in stderr.splitlines() if line.strip()]


def test_a_cluster_that_does_not_answer(git_repo: Path, spec: Path) -> None:
    bare_remote(git_repo)
    with refusing_port() as port:
        address = f"http://127.0.0.1:{port}"
        proc = run_with("ray", git_repo, spec, "--ray-address", address)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"Ray cluster {address} does not answer" in proc.stderr
    assert "ray start --head" in proc.stderr and "Traceback" not in proc.stderr


def test_a_remote_this_machine_cannot_reach(
    ray_cluster: RayHead, git_repo: Path, spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in ray_cluster.client_env({}).items():
        monkeypatch.setenv(key, value)
    gone = (git_repo.parent / "gone.git").as_uri()
    proc = cpo("run", str(spec), "--executor", "ray", "--remote", gone, cwd=git_repo)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = [p for p in problems(proc.stderr) if p.startswith(f"--remote {gone}: ")]
    assert "cannot reach it" in line and "ray workers reach" in line


def test_the_agent_cli_missing_on_the_cluster(
    ray_cluster: RayHead, git_repo: Path, spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe job runs the claude backend's own check on a worker; the variable that
    names the CLI reaches it through the handover of `executors.ray.env`."""
    for key, value in ray_cluster.client_env({}).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CPO_CLAUDE_BIN", "/nowhere/claude")
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "cpo" / "config.yaml"
    config.parent.mkdir(parents=True)
    ray = {"env": ["CPO_CLAUDE_BIN"], "gcs_address": ray_cluster.gcs_address}
    config.write_text(yaml.safe_dump({"executors": {"ray": ray}}))
    bare_remote(git_repo)
    proc = run_with("ray", git_repo, spec)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = [p for p in problems(proc.stderr) if p.startswith("on Ray worker ")]
    assert "/nowhere/claude" in line and "CPO_CLAUDE_BIN" in line
    assert not (spec / "report.json").exists()
