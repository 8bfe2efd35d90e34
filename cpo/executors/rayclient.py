"""A thin wrapper over Ray's Jobs API client: the only module that calls `ray.job_submission`.

It knows where the cluster is (`--ray-address`, else `RAY_ADDRESS`), how the client proves
itself (Ray 2.5x token auth: `RAY_AUTH_TOKEN`, `RAY_AUTH_TOKEN_PATH` or `~/.ray/auth_token`,
sent as a bearer header whatever `RAY_AUTH_MODE` says here, because the cluster decides),
how a task attempt's job is named (`submission_id`), and turns the client's errors into one
line with its fix. `ray` is imported lazily so that `cpo` without the extra still runs,
and `--executor ray` says which pip command installs it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import threading
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cpo.errors import CpoError, PreflightError, UsageError

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

INSTALL_HINT = "pip install 'cpo-orchestrator[ray]'"
ADDRESS_HINT = (
    "pass --ray-address http://HEAD:8265 (the Ray dashboard's address) or set RAY_ADDRESS"
)
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})


def import_client() -> type[JobSubmissionClient]:
    """Ray's Jobs API client class; a UsageError naming the pip command when it is missing."""
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError as exc:
        raise UsageError(
            f"--executor ray needs Ray's job client ({exc.name or 'ray'} is not installed)",
            hint=INSTALL_HINT,
        ) from exc
    # Ray logs each closed log stream at INFO on stderr: noise between cpo's own lines.
    for name in ("ray.dashboard.modules.job.sdk", "ray.dashboard.modules.dashboard_sdk"):
        logging.getLogger(name).setLevel(logging.WARNING)
    client: type[JobSubmissionClient] = JobSubmissionClient  # Any where Ray is not installed
    return client


def resolve_address(flag: str | None, environ: Mapping[str, str]) -> str:
    """The dashboard address: the flag, else `RAY_ADDRESS`; `host:port` gets `http://`."""
    address = (flag or environ.get("RAY_ADDRESS", "")).strip()
    if not address:
        raise UsageError("--executor ray: no Ray cluster address", hint=ADDRESS_HINT)
    if "://" not in address:
        address = f"http://{address}"
    return address.rstrip("/")


def auth_token(environ: Mapping[str, str]) -> str | None:
    """The cluster token as Ray's own clients look for it: the variable, the file it names,
    then `~/.ray/auth_token`."""
    if environ.get("RAY_AUTH_TOKEN", "").strip():
        return environ["RAY_AUTH_TOKEN"].strip()
    home = environ.get("HOME")
    candidates = [environ.get("RAY_AUTH_TOKEN_PATH", "")]
    candidates.append(str(Path(home) / ".ray" / "auth_token") if home else "")
    for path in filter(None, candidates):
        try:
            token = Path(path).read_text().strip()
        except OSError:
            continue
        if token:
            return token
    return None


def auth_headers(environ: Mapping[str, str]) -> dict[str, str]:
    token = auth_token(environ)
    return {"Authorization": f"Bearer {token}"} if token else {}


def submission_id(spec_id: str, task_id: str, attempt: int, start_commit: str) -> str:
    """The job's fixed name for one attempt: a restarted coordinator finds its job by it.

    Readable (spec, task, attempt) and unique per start commit, so a run started afresh
    from another base does not meet the jobs of an older one."""
    digest = hashlib.sha256(f"{spec_id}\0{task_id}\0{attempt}\0{start_commit}".encode())
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", f"{spec_id}-{task_id}")[:80]
    return f"cpo-{slug}-a{attempt}-{digest.hexdigest()[:12]}"


@dataclass(frozen=True)
class JobState:
    status: str  # PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED
    message: str

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] or type(exc).__name__


class RayJobs:
    """The Jobs API of one cluster. Thread-safe: the client is a requests session per call."""

    def __init__(self, address: str, environ: Mapping[str, str] | None = None) -> None:
        self.address = address
        self._headers = auth_headers(os.environ if environ is None else environ)
        self._client: JobSubmissionClient | None = None
        self._lock = threading.Lock()

    def client(self) -> JobSubmissionClient:
        """Connected once (the constructor checks the cluster answers and its version)."""
        with self._lock:
            if self._client is None:
                cls = import_client()
                try:
                    self._client = cls(self.address, headers=dict(self._headers))
                except Exception as exc:
                    raise connect_error(self.address, exc, bool(self._headers)) from exc
            return self._client

    def submit(
        self,
        sid: str,
        entrypoint: str,
        resources: Mapping[str, float],
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {}
        if resources:
            kwargs["entrypoint_resources"] = dict(resources)
        self.client().submit_job(
            entrypoint=entrypoint,
            submission_id=sid,
            metadata=dict(metadata or {}),
            **kwargs,
        )

    def state(self, sid: str) -> JobState | None:
        """The job's status, or None when the cluster has no job by that id."""
        try:
            info = self.client().get_job_info(sid)
        except RuntimeError as exc:
            if "does not exist" in str(exc) or "404" in str(exc):
                return None
            raise
        return JobState(str(info.status.value), info.message or "")

    def stop(self, sid: str) -> bool:
        """Ray sends SIGTERM to the entrypoint's process group, SIGKILL after its grace."""
        try:
            return bool(self.client().stop_job(sid))
        except RuntimeError as exc:
            if "does not exist" in str(exc):
                return False
            raise

    def delete(self, sid: str) -> None:
        self.client().delete_job(sid)

    def logs(self, sid: str) -> str:
        return str(self.client().get_job_logs(sid))

    def tail(self, sid: str) -> Generator[str, None, None]:
        """The job's output line by line from its first line, until the job ends.

        Ray's tail is an async generator over a websocket: it runs here on a loop of the
        calling thread's own (each task attempt has its own thread)."""
        loop = asyncio.new_event_loop()
        chunks = self.client().tail_job_logs(sid)
        pending = ""
        try:
            while True:
                try:
                    chunk = loop.run_until_complete(chunks.__anext__())
                except StopAsyncIteration:
                    break
                pending += chunk
                *lines, pending = pending.split("\n")
                yield from lines
            if pending:
                yield pending
        finally:
            loop.run_until_complete(chunks.aclose())  # type: ignore[attr-defined]
            loop.close()


def connect_error(address: str, exc: BaseException, sent_token: bool) -> CpoError:
    """What failed when connecting, with the fix: no answer, no token, a wrong token."""
    text = str(exc)
    if "Authentication required" in text or "401" in text.split("\n")[0]:
        return PreflightError(
            f"Ray cluster {address}: it requires a token, and none was sent",
            hint="set RAY_AUTH_TOKEN (on the head: `ray get-auth-token`) or RAY_AUTH_TOKEN_PATH",
        )
    if "Authentication failed" in text or "403" in text.split("\n")[0]:
        return PreflightError(
            f"Ray cluster {address}: the token was refused",
            hint="set RAY_AUTH_TOKEN to the cluster's token (on the head: `ray get-auth-token`)",
        )
    if sent_token and "InvalidAuthToken" in text:
        return PreflightError(f"Ray cluster {address}: the token was refused")
    return PreflightError(
        f"Ray cluster {address} does not answer: {_one_line(exc)}",
        hint="start it (`ray start --head --dashboard-host 0.0.0.0`) or fix --ray-address",
    )
