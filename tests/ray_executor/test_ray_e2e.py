"""`cpo run --executor ray` end to end on a real local cluster, the same scenarios as the
other executors (tests/executorkit.py): two waves with dependents seeing merged work, a
task without the marker, a timeout, Ctrl-C then --resume, the coordinator killed then
--resume re-attaching to its running job, and --max-concurrent across the cluster."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cpo.executors.rayclient import RayJobs
from tests.conftest import git
from tests.executorkit import check_two_waves, no_marker_records, run_with
from tests.raycluster import RayHead, tagged_processes
from tests.runkit import make_spec, report
from tests.test_executors_e2e import SAME
from tests.workerkit import bare_remote

AGENT = "cpo.scripted.agent"


@pytest.fixture
def on_ray(ray_cluster: RayHead, fake_claude: Path, monkeypatch: pytest.MonkeyPatch) -> RayJobs:
    """This test's cpo talks to the session's cluster (address and token by environment)."""
    for key, value in ray_cluster.client_env({}).items():
        monkeypatch.setenv(key, value)
    return RayJobs(ray_cluster.address, ray_cluster.client_env({}))


def jobs_of(jobs: RayJobs, spec_id: str, task: str) -> list[Any]:
    return [
        j
        for j in jobs.client().list_jobs()
        if (j.metadata or {}).get("cpo_spec") == spec_id
        and (j.metadata or {}).get("cpo_task") == task
    ]


def wait_for(what: str, check: Callable[[], object], limit: float = 90) -> None:
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def start_cpo(repo: Path, root: Path, *args: str) -> subprocess.Popen[str]:
    """`cpo run --executor ray` in the background, in its own process group."""
    url = (repo.parent / "remote.git").as_uri()
    argv = ["run", str(root), "--executor", "ray", "--remote", url, *args]
    return subprocess.Popen(
        [sys.executable, "-m", "cpo", *argv],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def test_two_waves_dependents_see_merged_work(on_ray: RayJobs, git_repo: Path) -> None:
    data = check_two_waves("ray", git_repo)
    handles = [a["handle"] for t in data["tasks"].values() for a in t["attempts"]]
    assert {h["executor"] for h in handles} == {"ray"}
    assert all(on_ray.state(h["id"]).status == "SUCCEEDED" for h in handles)  # type: ignore[union-attr]


def test_a_task_without_the_marker_has_the_local_record(
    on_ray: RayJobs, git_repo: Path, tmp_path: Path
) -> None:
    records = no_marker_records(("local", "ray"), git_repo, tmp_path)
    local, remote = ({k: r[k] for k in SAME} for r in records)
    assert local == remote
    assert remote["reason"] == "no_completion_marker" and remote["leftovers_committed"]


def test_timeout_stops_the_job_and_leaves_no_process(
    on_ray: RayJobs, ray_cluster: RayHead, git_repo: Path
) -> None:
    root = make_spec(git_repo, [{"task-001": "@script spawn-child 600\n@script hang"}])
    proc = run_with("ray", git_repo, root, "--timeout", "3s", "--retries", "0")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    task = report(root)["tasks"]["task-001"]
    assert task["reason"] == "timeout"
    wait_for("the agent and its child to end", lambda: not tagged_processes(ray_cluster, AGENT))
    assert tagged_processes(ray_cluster, "sleep 600") == []
    assert on_ray.state(task["attempts"][-1]["handle"]["id"]).terminal  # type: ignore[union-attr]


def test_ctrl_c_stops_the_job_then_resume_finishes(
    on_ray: RayJobs, ray_cluster: RayHead, git_repo: Path
) -> None:
    bare_remote(git_repo)
    prompt = "@script sleep 4\n@script write a.txt a\n@script commit add a\n@script marker"
    root = make_spec(git_repo, [{"task-001": prompt}])
    cpo = start_cpo(git_repo, root)
    wait_for("the agent on the cluster", lambda: tagged_processes(ray_cluster, AGENT))
    os.killpg(cpo.pid, signal.SIGINT)
    out, err = cpo.communicate(timeout=120)
    assert cpo.returncode == 130, out + err
    first = report(root)["tasks"]["task-001"]["attempts"][-1]
    assert first["status"] == "interrupted"
    # The worker's verdict reaches cpo before Ray has noted the job's end (cpo.executors.ray:
    # it does not wait those seconds): the job was stopped, and Ray says so soon after.
    job = first["handle"]["id"]
    wait_for("Ray to note the job stopped", lambda: on_ray.state(job).status == "STOPPED")  # type: ignore[union-attr]
    wait_for("the agent to end", lambda: not tagged_processes(ray_cluster, AGENT))
    proc = run_with("ray", git_repo, root, "--resume")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert report(root)["tasks"]["task-001"]["status"] == "completed"
    assert "a.txt" in git(git_repo, "ls-tree", "--name-only", "integration/TS-0042")


def test_killed_coordinator_resume_reattaches_to_the_running_job(
    on_ray: RayJobs, ray_cluster: RayHead, git_repo: Path, tmp_path: Path
) -> None:
    bare_remote(git_repo)
    runs = tmp_path / "runs.txt"
    prompt = (
        f"@script append {runs} run\\n\n@script sleep 6\n"
        "@script write a.txt a\n@script commit add a\n@script marker"
    )
    root = make_spec(git_repo, [{"task-001": prompt}], spec_id="TS-0911")
    cpo = start_cpo(git_repo, root)
    wait_for("the agent on the cluster", lambda: runs.exists())
    os.kill(cpo.pid, signal.SIGKILL)
    cpo.communicate(timeout=60)
    # The job outlives its coordinator (nothing of cpo's kills a cluster's job).
    (job,) = jobs_of(on_ray, "TS-0911", "task-001")
    assert on_ray.state(job.submission_id).status == "RUNNING"  # type: ignore[union-attr]
    proc = run_with("ray", git_repo, root, "--resume")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = report(root)["tasks"]["task-001"]
    assert data["status"] == "completed", json.dumps(data, indent=1)
    assert runs.read_text() == "run\n"  # one agent, never a second
    assert [j.submission_id for j in jobs_of(on_ray, "TS-0911", "task-001")] == [job.submission_id]
    assert "re-attach" in Path(data["log"]).read_text()


@pytest.mark.parametrize(("cap", "most"), [(1, 1), (2, 2)])
def test_max_concurrent_is_the_cap_across_the_cluster(
    on_ray: RayJobs, git_repo: Path, tmp_path: Path, cap: int, most: int
) -> None:
    """Agents log their start and end in one file; at most `cap` are ever inside at once
    (the cluster has two slots: with -j 2 two do overlap, so the count can tell)."""
    spans = tmp_path / "spans"
    agent = (
        f'echo start >> {spans} && sleep 1 && echo x > "f-$CPO_TASK_ID" && '
        f'git add -A && git commit -qm "$CPO_TASK_ID" && echo end >> {spans} && '
        ": > .claude-task-complete"
    )
    root = make_spec(git_repo, [{f"task-00{n}": "" for n in (1, 2, 3, 4)}])
    args = ["--max-concurrent", str(cap), "--backend", "command", "--agent-command", agent]
    proc = run_with("ray", git_repo, root, *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    inside = list(
        itertools.accumulate(1 if w == "start" else -1 for w in spans.read_text().split())
    )
    assert len(inside) == 8 and inside[-1] == 0
    assert max(inside) == most


def test_fail_fast_stops_the_other_running_job(
    on_ray: RayJobs, ray_cluster: RayHead, git_repo: Path
) -> None:
    tasks = {"task-001": "@script sleep 2\n@script exit 3", "task-002": "@script hang"}
    root = make_spec(git_repo, [tasks], spec_id="TS-0913")
    proc = run_with("ray", git_repo, root, "--fail-fast", "--retries", "0")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    records = report(root)["tasks"]
    assert records["task-001"]["status"] == "failed"  # the agent died: its own failure
    assert records["task-002"]["status"] == "interrupted"
    (job,) = jobs_of(on_ray, "TS-0913", "task-002")
    wait_for("the job to stop", lambda: on_ray.state(job.submission_id).terminal)  # type: ignore[union-attr]
    assert on_ray.state(job.submission_id).status == "STOPPED"  # type: ignore[union-attr]
    wait_for("the agent to end", lambda: not tagged_processes(ray_cluster, AGENT))
