"""cpo.executors.rayclient and raysecrets against a real cluster: auth, jobs, stop, logs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from cpo.errors import PreflightError
from cpo.executors import raysecrets
from cpo.executors.rayclient import RayJobs, submission_id
from tests.raycluster import RayHead, refusing_port, tagged_processes


def wait_terminal(jobs: RayJobs, sid: str, limit: float = 60) -> str:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        state = jobs.state(sid)
        if state is not None and state.terminal:
            return state.status
        time.sleep(0.2)
    raise AssertionError(f"job {sid} still not finished after {limit}s")


def test_no_token_is_one_line_with_the_fix(ray_cluster: RayHead, tmp_path: Path) -> None:
    with pytest.raises(PreflightError) as info:
        RayJobs(ray_cluster.address, {"HOME": str(tmp_path)}).client()
    assert info.value.lines() == [
        f"Ray cluster {ray_cluster.address}: it requires a token, and none was sent",
        "set RAY_AUTH_TOKEN (on the head: `ray get-auth-token`) or RAY_AUTH_TOKEN_PATH",
    ]


def test_wrong_token_refused(ray_cluster: RayHead) -> None:
    with pytest.raises(PreflightError, match="the token was refused"):
        RayJobs(ray_cluster.address, {"RAY_AUTH_TOKEN": "0" * 32}).client()


def test_token_from_the_file_ray_names(ray_cluster: RayHead, tmp_path: Path) -> None:
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text(ray_cluster.token + "\n")
    assert RayJobs(ray_cluster.address, {"HOME": str(tmp_path)}).state("no-such-job") is None


def test_nothing_listening(tmp_path: Path) -> None:
    with refusing_port() as port:
        address = f"http://127.0.0.1:{port}"
        with pytest.raises(PreflightError, match=rf"Ray cluster {address} does not answer"):
            RayJobs(address, {"HOME": str(tmp_path)}).client()


def test_job_output_tailed_then_stop_ends_its_processes(ray_cluster: RayHead) -> None:
    jobs = RayJobs(ray_cluster.address, {"RAY_AUTH_TOKEN": ray_cluster.token})
    sid = submission_id("TS-1", "tail", 1, f"{time.time()}")
    jobs.submit(sid, "echo one; echo two; exec sleep 4321", {"agent_slot": 1})
    lines = jobs.tail(sid)
    seen = [next(lines)]
    while seen[-1] != "two":  # Ray's own lines ("Runtime env is setting up.") come first
        seen.append(next(lines))
    assert seen[-2:] == ["one", "two"]
    assert tagged_processes(ray_cluster, "sleep 4321")
    assert jobs.stop(sid) is True
    assert wait_terminal(jobs, sid) == "STOPPED"
    assert list(lines) is not None  # the tail ends with the job
    assert tagged_processes(ray_cluster, "sleep 4321") == []


def test_secrets_reach_the_job_and_only_it(ray_cluster: RayHead) -> None:
    env = {"RAY_AUTH_TOKEN": ray_cluster.token}
    jobs = RayJobs(ray_cluster.address, env)
    sid = submission_id("TS-1", "secret", 1, f"{time.time()}")
    secret = "sk-ant-" + "x" * 20
    raysecrets.put(ray_cluster.gcs_address, sid, {"API_KEY": secret}, env, ray_cluster.token)
    code = (
        "import json, os; from cpo.executors.raysecrets import take; "
        f"at = os.environ['RAY_ADDRESS']; a = take(at, '{sid}'); b = take(at, '{sid}'); "
        "print(json.dumps([len(a['API_KEY']), a['API_KEY'][:7], b]))"
    )
    probe = f'python -c "{code}"'
    jobs.submit(sid, probe, {})
    assert wait_terminal(jobs, sid) == "SUCCEEDED", jobs.logs(sid)
    # the value arrived once (a second take finds nothing) ...
    assert json.loads(jobs.logs(sid).strip().splitlines()[-1]) == [len(secret), "sk-ant-", {}]
    # ... and is nowhere in what the cluster shows about the job
    info = jobs.client().get_job_info(sid)
    assert secret not in json.dumps(info.dict(), default=str)
