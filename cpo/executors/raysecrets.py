"""Handing secrets (`executors.ray.env`) from the coordinator to one Ray job, and only to it.

A job's entrypoint, metadata and runtime_env are shown by the dashboard and `ray job list`
to anyone who can reach the cluster, and its logs are kept: none of them may carry an API
key. So the coordinator writes the values into the cluster's own key-value store (the GCS,
the store Ray keeps its cluster state in) under a key named after the job, and the job's
entrypoint (`cpo.executors.rayentry`) takes them out, deletes them, and puts them in the
worker's environment before `cpo worker run-task` starts. The key is unguessable only in the
sense that it is the job's id: the protection is the cluster's own (token auth), the same as
for the jobs themselves, and a value lives in the store only until its job starts.

The coordinator side runs in a short child process (`python -m cpo.executors.raysecrets`),
values on stdin: Ray's GCS client is C++ that reads `RAY_AUTH_MODE` once per process, and
cpo's own process keeps its signal handling and environment untouched by it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping

from cpo.errors import PreflightError

NAMESPACE = b"cpo"


def kv_key(submission_id: str) -> bytes:
    return f"env:{submission_id}".encode()


def _gcs(address: str) -> object:
    # Private, but the one client of the store that needs no driver process (ray.init).
    from ray._raylet import GcsClient  # type: ignore[attr-defined]

    return GcsClient(address=address)


def take(address: str, submission_id: str) -> dict[str, str]:
    """Worker side: the values put for this job, removed from the store as they are read."""
    client: object = _gcs(address)
    key = kv_key(submission_id)
    raw = client.internal_kv_get(key, NAMESPACE)  # type: ignore[attr-defined]
    if raw is None:
        return {}
    client.internal_kv_del(key, False, NAMESPACE)  # type: ignore[attr-defined]
    values: dict[str, str] = json.loads(raw)
    return values


def _child_env(environ: Mapping[str, str], token: str | None) -> dict[str, str]:
    env = dict(environ)
    if token:
        # The GCS client sends the token only in token mode, which it reads from here.
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    return env


def _call(args: list[str], stdin: str, environ: Mapping[str, str], token: str | None) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cpo.executors.raysecrets", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=_child_env(environ, token),
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        why = lines[-1] if lines else f"exit {proc.returncode}"
        raise PreflightError(
            f"Ray GCS {args[1]}: cannot hand the job its variables: {why[:300]}",
            hint="set executors.ray.gcs_address to the head's HOST:6379 (`ray start --port`)",
        )


def put(
    address: str,
    submission_id: str,
    values: Mapping[str, str],
    environ: Mapping[str, str],
    token: str | None,
) -> None:
    """Coordinator side: store `values` for the job `submission_id` (before submitting it)."""
    _call(["put", address, submission_id], json.dumps(dict(values)), environ, token)


def discard(
    address: str, submission_id: str, environ: Mapping[str, str], token: str | None
) -> None:
    """Coordinator side: remove what a job that never started did not take."""
    _call(["del", address, submission_id], "", environ, token)


def main(argv: list[str]) -> int:
    action, address, submission_id = argv
    client: object = _gcs(address)
    if action == "put":
        client.internal_kv_put(  # type: ignore[attr-defined]
            kv_key(submission_id), sys.stdin.read().encode(), True, NAMESPACE
        )
    else:
        client.internal_kv_del(kv_key(submission_id), False, NAMESPACE)  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    sys.exit(main(sys.argv[1:]))
