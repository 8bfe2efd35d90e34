"""The ray executor on a real cluster, one attempt at a time (the boundary, no `cpo run`):
a task's branch goes from a `file://` bare remote to the worker and back; cancel stops the
agent; a second coordinator adopts a running job; secrets reach the agent and only it."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from cpo.executors.ray import Limits, RayExecutor, RaySettings
from cpo.executors.rayclient import submission_id
from cpo.executors.spec import AgentLaunch, AnyEvent, Exited, Started, TaskLaunch
from tests.conftest import git
from tests.raycluster import RayHead, tagged_processes


@pytest.fixture
def remote(git_repo: Path, tmp_path: Path) -> tuple[Path, str]:
    """The repository and a bare `file://` remote the cluster's workers reach."""
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(git_repo, "remote", "add", "origin", bare.as_uri())
    git(git_repo, "push", "-q", "origin", "main")
    return git_repo, bare.as_uri()


def launch_for(remote: tuple[Path, str], task: str, prompt: str, **extra: Any) -> TaskLaunch:
    """A launch whose branch is on the remote at main's head (what cpo.run.remote does)."""
    repo, url = remote
    start = git(repo, "rev-parse", "HEAD")
    branch = f"cpo/{task}-attempt-1-{time.time_ns()}"
    git(repo, "push", "-q", url, f"{start}:refs/heads/{branch}")
    agent = extra.pop("agent", AgentLaunch(backend="claude"))
    return TaskLaunch(
        spec_id="TS-RAY",
        task_id=task,
        wave=1,
        attempt=1,
        remote=url,
        branch=branch,
        start_commit=f"{start}",
        agent=agent,
        prompt=prompt,
        **extra,
    )


def executor(head: RayHead, **extra: Any) -> RayExecutor:
    settings = RaySettings(address=head.address, gcs_address=head.gcs_address, **extra)
    return RayExecutor(settings, head.client_env({}))


class Events:
    def __init__(self) -> None:
        self.items: list[AnyEvent] = []
        self.started = threading.Event()

    def __call__(self, event: AnyEvent) -> None:
        self.items.append(event)
        if isinstance(event, Started):
            self.started.set()


def test_attempt_runs_on_the_cluster_and_pushes_its_branch(
    ray_cluster: RayHead, remote: tuple[Path, str]
) -> None:
    launch = launch_for(
        remote, "t1", "@script write hello.txt hi\n@script commit add hello\n@script marker"
    )
    events = Events()
    exited = executor(ray_cluster).run(launch, events)
    assert exited.ok, exited
    assert exited.commits == 1 and "hello.txt" in exited.files
    assert any(isinstance(e, Started) for e in events.items)
    repo, url = remote
    git(repo, "fetch", "-q", url, launch.branch)
    assert git(repo, "show", "FETCH_HEAD:hello.txt") == "hi"


def test_cancel_stops_the_job_and_leaves_no_agent(
    ray_cluster: RayHead, remote: tuple[Path, str]
) -> None:
    ex = executor(ray_cluster)
    launch = launch_for(remote, "hang", "@script hang")
    events = Events()
    result: list[Exited] = []
    runner = threading.Thread(target=lambda: result.append(ex.run(launch, events)))
    runner.start()
    assert events.started.wait(60), events.items
    deadline = time.monotonic() + 30
    while not tagged_processes(ray_cluster, "cpo.scripted.agent") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert tagged_processes(ray_cluster, "cpo.scripted.agent")
    ex.cancel(ex.handle(launch))
    runner.join(60)
    assert result and not result[0].ok and result[0].reason == "interrupted", result
    assert tagged_processes(ray_cluster, "cpo.scripted.agent") == []


def test_a_second_coordinator_adopts_the_running_job(
    ray_cluster: RayHead, remote: tuple[Path, str]
) -> None:
    first = executor(ray_cluster)
    launch = launch_for(
        remote, "adopt", "@script sleep 3\n@script write a.txt a\n@script commit a\n@script marker"
    )
    sid = first.handle(launch).id
    first.submit(sid, launch)
    # The first coordinator is gone; a new one finds the job by the recorded handle.
    handle = executor(ray_cluster).handle(launch)
    assert handle.id == sid
    exited = executor(ray_cluster).adopt(handle, Events())
    assert exited is not None and exited.ok and exited.commits == 1, exited
    # run() of the same attempt while the job is alive would attach, never submit twice.
    assert len([j for j in first.jobs.client().list_jobs() if j.submission_id == sid]) == 1


def test_adopt_of_an_unknown_job_is_none(ray_cluster: RayHead) -> None:
    ex = executor(ray_cluster)
    handle = ex.handle(
        TaskLaunch(
            spec_id="TS-RAY",
            task_id="never",
            wave=1,
            attempt=9,
            remote="file:///nowhere",
            branch="b",
            start_commit="0" * 40,
            agent=AgentLaunch(backend="claude"),
            prompt="",
        )
    )
    assert ex.adopt(handle, Events()) is None


def test_configured_secret_reaches_the_agent_and_no_job_record(
    ray_cluster: RayHead, remote: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-ant-api03-" + "q" * 24
    ex = RayExecutor(
        RaySettings(
            address=ray_cluster.address, gcs_address=ray_cluster.gcs_address, env=("MY_KEY",)
        ),
        ray_cluster.client_env({"MY_KEY": secret}),
    )
    command = (
        'printf %s "$MY_KEY" | wc -c > length.txt && git add length.txt && '
        "git commit -qm length && touch .claude-task-complete"
    )
    launch = launch_for(remote, "env", "", agent=AgentLaunch(backend="command", command=command))
    exited = ex.run(launch, Events())
    assert exited.ok, exited
    repo, url = remote
    git(repo, "fetch", "-q", url, launch.branch)
    assert git(repo, "show", "FETCH_HEAD:length.txt") == str(len(secret))
    sid = ex.handle(launch).id
    info = ex.jobs.client().get_job_info(sid)
    assert secret not in json.dumps(info.dict(), default=str)
    assert secret not in ex.jobs.logs(sid)


@pytest.mark.parametrize("limits", [Limits(total=2), Limits(idle=2)])
def test_a_worker_that_outlives_its_limits_is_stopped_by_the_coordinator(
    ray_cluster: RayHead, limits: Limits
) -> None:
    """The backstop behind the worker's own timeouts: a job that started (its `started`
    event) and then neither ends nor speaks is stopped with stop_job, verdict `timeout`."""
    ex = executor(ray_cluster)
    sid = submission_id("TS-RAY", "wedged", 1, f"{time.time_ns()}")
    ex.jobs.submit(sid, """echo '{"type": "started"}'; exec sleep 4322""", {})
    exited = ex.follow(sid, Events(), limits)
    assert (exited.ok, exited.reason) == (False, "timeout"), exited
    assert "the Ray job was stopped" in (exited.error or "")
    assert ex.jobs.state(sid).status == "STOPPED"  # type: ignore[union-attr]
    assert tagged_processes(ray_cluster, "sleep 4322") == []


def test_cancel_of_a_job_that_never_started_removes_its_handed_over_values(
    ray_cluster: RayHead, remote: tuple[Path, str]
) -> None:
    """No node has the resource: the job waits; cancelled, it never took its variables,
    so the coordinator removes them from the cluster's store."""
    settings = RaySettings(
        address=ray_cluster.address,
        gcs_address=ray_cluster.gcs_address,
        resources={"no_such_resource": 1.0},
        env=("MY_KEY",),
    )
    ex = RayExecutor(settings, ray_cluster.client_env({"MY_KEY": "sk-ant-" + "p" * 24}))
    launch = launch_for(remote, "pending", "@script marker")
    sid = ex.handle(launch).id
    ex.submit(sid, launch)
    assert ex.jobs.state(sid).status == "PENDING"  # type: ignore[union-attr]
    ex.cancel(ex.handle(launch))
    probe = f"sid-probe-{time.time_ns()}"
    code = (
        "import json, os; from cpo.executors.raysecrets import take; "
        f"print(json.dumps(take(os.environ['RAY_ADDRESS'], '{sid}')))"
    )
    ex.jobs.submit(probe, f'python -c "{code}"', {})
    deadline = time.monotonic() + 60
    while not ex.jobs.state(probe).terminal:  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert ex.jobs.logs(probe).strip().splitlines()[-1] == "{}"
