"""The ray executor's pure parts (no cluster: tests/ray_executor/ has those), and
`--executor ray` without the `ray` extra."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cpo.config import load_settings
from cpo.errors import UsageError
from cpo.executors.ray import RaySettings, settings_from
from cpo.executors.rayclient import auth_headers, auth_token, resolve_address, submission_id
from cpo.executors.rayentry import decode_spec, encode_spec, entrypoint
from cpo.run.options import RunOptions, executor_options
from tests.runkit import make_spec

# Runs cpo with `import ray` failing, as on a machine without the extra.
WITHOUT_RAY = "import sys; sys.modules['ray'] = None; from cpo.cli import main; main()"


def test_without_the_extra_one_line_names_the_pip_command(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": "@script marker"}])
    argv = ["run", str(root), "--executor", "ray", "--ray-address", "http://127.0.0.1:1"]
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_RAY, *argv],
        cwd=git_repo,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "pip install 'cpo-orchestrator[ray]'" in proc.stderr


def test_submission_id_names_one_attempt() -> None:
    sid = submission_id("TS-0042", "task-001", 2, "a" * 40)
    assert sid.startswith("cpo-TS-0042-task-001-a2-")
    assert sid == submission_id("TS-0042", "task-001", 2, "a" * 40)  # a restart finds it
    others = {
        submission_id("TS-0042", "task-001", 3, "a" * 40),
        submission_id("TS-0042", "task-002", 2, "a" * 40),
        submission_id("TS-0043", "task-001", 2, "a" * 40),
        submission_id("TS-0042", "task-001", 2, "b" * 40),
    }
    assert sid not in others and len(others) == 4
    odd = submission_id("TS 1/é", "t;rm -rf", 1, "c" * 40)
    assert all(ch.isalnum() or ch in "-_" for ch in odd), odd


def test_address_from_the_flag_then_the_environment() -> None:
    env = {"RAY_ADDRESS": "head:8265"}
    assert resolve_address("http://a:1/", env) == "http://a:1"
    assert resolve_address(None, env) == "http://head:8265"
    with pytest.raises(UsageError, match="no Ray cluster address"):
        resolve_address(None, {})


def test_token_from_the_variable_then_the_files(tmp_path: Path) -> None:
    named = tmp_path / "named"
    named.write_text("from-path\n")
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("from-home")
    home = {"HOME": str(tmp_path)}
    assert auth_token({**home, "RAY_AUTH_TOKEN": " t1 ", "RAY_AUTH_TOKEN_PATH": str(named)}) == "t1"
    assert auth_token({**home, "RAY_AUTH_TOKEN_PATH": str(named)}) == "from-path"
    assert auth_token(home) == "from-home"
    assert auth_headers({"HOME": str(tmp_path / "none")}) == {}
    assert auth_headers(home) == {"Authorization": "Bearer from-home"}


def test_the_launch_travels_compressed_and_shell_safe() -> None:
    launch = json.dumps({"prompt": "x" * 200_000 + " $(rm -rf /) 'quoted' \"too\"\n"})
    command = entrypoint("python", launch, "cpo-TS-1-t-a1-0123", probe=False)
    words = command.split(" ")
    assert words[:3] == ["python", "-m", "cpo.executors.rayentry"]
    assert words[4:] == ["--env", "cpo-TS-1-t-a1-0123"]
    assert all(ch.isalnum() or ch in "-_=" for ch in words[3])
    assert len(words[3]) < 131072  # one argument's limit (MAX_ARG_STRLEN)
    assert decode_spec(words[3]) == json.loads(launch)
    assert decode_spec(encode_spec("[1]")) == [1]


def test_settings_from_the_config_flag_and_environment_on_top(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (git_repo / ".cpo").mkdir()
    (git_repo / ".cpo" / "config.yaml").write_text(
        "executors:\n  ray:\n    address: http://cfg:8265\n    env: [ANTHROPIC_API_KEY]\n"
        "    resources: {agent_slot: 2, memory_gb: 1}\n    gcs_address: cfg:7000\n"
    )
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    settings = load_settings(git_repo)
    found = executor_options(RunOptions(executor="ray"), settings)
    assert settings_from(found, {}) == RaySettings(
        address="http://cfg:8265",
        gcs_address="cfg:7000",
        resources={"agent_slot": 2.0, "memory_gb": 1.0},
        env=("ANTHROPIC_API_KEY",),
    )
    monkeypatch.setenv("RAY_ADDRESS", "http://env:8265")
    assert executor_options(RunOptions(executor="ray"), settings)["address"] == "http://env:8265"
    flagged = RunOptions(executor="ray", ray_address="http://flag:8265")
    assert executor_options(flagged, settings)["address"] == "http://flag:8265"
    # Defaults: one agent_slot per job, the GCS on the dashboard's host.
    plain = settings_from({"address": "http://h:8265"}, {})
    assert (plain.resources, plain.gcs_address, plain.env) == ({"agent_slot": 1.0}, "h:6379", ())


def test_config_names_that_are_no_variables_are_refused(git_repo: Path) -> None:
    (git_repo / ".cpo").mkdir()
    (git_repo / ".cpo" / "config.yaml").write_text("executors:\n  ray:\n    env: [A-B]\n")
    with pytest.raises(UsageError, match=r"executors\.ray\.env: .*'A-B' is not a variable name"):
        load_settings(git_repo)
