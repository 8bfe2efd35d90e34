"""Preflight for `--executor ray`: the cluster answers (and takes the token), and the agent
CLIs are there on the cluster, each problem one line with its fix (that the git remote is
reachable from here is every remote executor's check: cpo.run.remote).

The cluster side is a tiny probe job (`cpo.run.rayprobe`, through the same entrypoint,
resources and variable handover as a task). What it checks there is what a task will meet.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from typing import Any

from cpo.agents.base import AgentRequest
from cpo.errors import CpoError
from cpo.executors.ray import RayExecutor
from cpo.executors.rayentry import entrypoint

# The probe waits this long for a free slot on the cluster before saying there is none.
PROBE_WAIT = 90.0
_SENT = ("model", "max_turns", "permission_mode", "approval_mode", "sandbox_mode", "command")


def ray_problems(executor: object, requests: Iterable[tuple[str, AgentRequest]]) -> list[str]:
    if not isinstance(executor, RayExecutor):
        return []
    try:
        executor.jobs.client()
    except CpoError as exc:
        return [" ".join(exc.lines())]
    return probe_problems(executor, requests)  # the remote: cpo.run.remote.remote_problems


def _probe_spec(requests: Iterable[tuple[str, AgentRequest]]) -> str:
    """The agent settings to check, once each (JSON; the probe's entrypoint encodes it)."""
    seen: dict[str, dict[str, Any]] = {}
    for backend, req in requests:
        fields = {k: getattr(req, k) for k in _SENT}
        fields["extra_args"] = list(req.extra_args)
        seen.setdefault(
            json.dumps([backend, fields], sort_keys=True), fields | {"backend": backend}
        )
    return json.dumps(list(seen.values()))


def probe_problems(
    executor: RayExecutor, requests: Iterable[tuple[str, AgentRequest]]
) -> list[str]:
    """Run the probe job; its problems, prefixed with where they were found."""
    jobs, sid = executor.jobs, f"cpo-probe-{uuid.uuid4().hex[:12]}"
    python, resources = executor.settings.python, executor.settings.resources
    env_key = sid if executor.hand_over(sid, ()) else None
    command = entrypoint(python, _probe_spec(requests), env_key, probe=True)
    jobs.submit(sid, command, resources, {"cpo_probe": "1"})
    deadline = time.monotonic() + PROBE_WAIT
    try:
        while (state := jobs.state(sid)) is not None and not state.terminal:
            if time.monotonic() > deadline:
                jobs.stop(sid)
                return [
                    f"Ray cluster {executor.settings.address}: no node gave the probe job "
                    f"{resources} within {PROBE_WAIT:.0f}s: start workers with `ray start "
                    "--resources '{\"agent_slot\": N}'` or set executors.ray.resources"
                ]
            time.sleep(0.3)
        logs = jobs.logs(sid)
    finally:
        if (state := jobs.state(sid)) is not None and state.terminal:
            jobs.delete(sid)
    return _read_probe(executor.settings.address, python, logs)


def _read_probe(address: str, python: str, logs: str) -> list[str]:
    for line in reversed(logs.splitlines()):
        if line.startswith("{"):
            try:
                found = json.loads(line)
            except ValueError:
                continue
            return [f"on Ray worker {found['host']}: {p}" for p in found["problems"]]
    if "No module named cpo" in logs:
        return [
            f"Ray cluster {address}: cpo is not installed where the workers' `{python}` is: "
            "pip install cpo-orchestrator there (with Ray), on every node"
        ]
    tail = " ".join(logs.strip().splitlines()[-1:])[:300] or "no output"
    return [f"Ray cluster {address}: the probe job failed ({tail})"]
