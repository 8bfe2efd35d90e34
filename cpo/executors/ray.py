"""The `ray` executor: each task attempt is one Ray job running `cpo worker run-task`.

A job is named by its attempt (`rayclient.submission_id`: spec, task, attempt, start
commit), so the handle is known before anything is submitted, and a coordinator that
restarts finds the job still running and follows it instead of starting a second agent.
The launch travels in the entrypoint (`rayentry`, compressed; it holds no secret), the
values of `executors.ray.env` through the cluster's key-value store (`raysecrets`), never
in the job's metadata, entrypoint, runtime_env or logs. What the worker prints (one JSON
event per line) comes back through Ray's log tail; `cancel` is Ray's `stop_job` (SIGTERM
to the entrypoint's process group, then SIGKILL), which the worker passes on to the
agent's own group.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cpo.errors import UsageError
from cpo.executors import raysecrets
from cpo.executors.base import EventSink
from cpo.executors.rayclient import (
    INSTALL_HINT,
    RayJobs,
    auth_token,
    import_client,
    resolve_address,
    submission_id,
)
from cpo.executors.rayentry import entrypoint
from cpo.executors.spec import AnyEvent, Exited, Handle, Started, TaskLaunch
from cpo.executors.stream import EventStream

NAME = "ray"
DEFAULT_RESOURCES: dict[str, float] = {"agent_slot": 1.0}
# How often a broken log stream is picked up again before the attempt counts as lost.
TAIL_RETRIES = 5
# The worker enforces the launch's timeout and idle timeout itself (SIGTERM to the agent's
# group, SIGKILL after the grace, then its push). Past them by this much, the coordinator
# stops the job with stop_job: a worker that cannot end (a hung push, a wedged node) must
# not hold its slot and the run forever.
BACKSTOP = 120.0


@dataclass(frozen=True)
class RaySettings:
    address: str  # the dashboard's http://HOST:PORT
    gcs_address: str  # HOST:PORT of the GCS, for handing over `env`
    resources: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_RESOURCES))
    env: tuple[str, ...] = ()  # variable names whose values go from here to each job
    python: str = "python"  # the workers' Python, the one Ray and cpo are installed in
    backstop: float = BACKSTOP


def settings_from(options: Mapping[str, Any], environ: Mapping[str, str]) -> RaySettings:
    """`options`: `address` (--ray-address), `resources`, `env`, `gcs_address`, `python`
    (config `executors.ray.*`); the address falls back to `RAY_ADDRESS`."""
    address = resolve_address(options.get("address"), environ)
    gcs = options.get("gcs_address") or f"{urlsplit(address).hostname}:6379"
    resources = options.get("resources")
    return RaySettings(
        address=address,
        gcs_address=str(gcs),
        resources=dict(DEFAULT_RESOURCES if resources is None else resources),
        env=tuple(options.get("env") or ()),
        python=str(options.get("python") or "python"),
    )


class RayExecutor:
    name = NAME

    def __init__(self, settings: RaySettings, environ: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self._environ = dict(os.environ if environ is None else environ)
        self.jobs = RayJobs(settings.address, self._environ)

    # -- the Executor protocol ------------------------------------------------------------
    def handle(self, launch: TaskLaunch) -> Handle:
        """The job's id, and the limits a coordinator that adopts it enforces too."""
        sid = submission_id(launch.spec_id, launch.task_id, launch.attempt, launch.start_commit)
        data = {"address": self.settings.address}
        # Past what the worker may take (its setup commands and nudges included).
        for key, value in (("timeout", launch.longest()), ("idle_timeout", launch.longest_quiet())):
            if value is not None:
                data[key] = str(value + self.settings.backstop)
        return Handle(executor=NAME, id=sid, data=data)

    def run(self, launch: TaskLaunch, on_event: EventSink) -> Exited:
        sid = self.handle(launch).id
        state = self.jobs.state(sid)
        if state is None or state.terminal:
            if state is not None:
                # A finished job of the same attempt id: a run started afresh from the same
                # commit. Its record is history; this launch is a new attempt.
                self.jobs.delete(sid)
            self.submit(sid, launch)
        return self.follow(sid, on_event, Limits.of(self.handle(launch)))

    def adopt(self, handle: Handle, on_event: EventSink) -> Exited | None:
        if handle.executor != NAME or self.jobs.state(handle.id) is None:
            return None
        return self.follow(handle.id, on_event, Limits.of(handle))

    def cancel(self, handle: Handle) -> None:
        self.jobs.stop(handle.id)
        if self._values(()):
            # A job stopped before it started never took its variables.
            raysecrets.discard(
                self.settings.gcs_address, handle.id, self._environ, auth_token(self._environ)
            )

    # -- the parts ---------------------------------------------------------------------------
    def _values(self, names: Iterable[str]) -> dict[str, str]:
        """The variables to hand over: the configured names and the launch's, from here."""
        wanted = dict.fromkeys([*self.settings.env, *names])
        return {k: self._environ[k] for k in wanted if k in self._environ}

    def hand_over(self, sid: str, names: Iterable[str]) -> dict[str, str]:
        """Put the job's variables in the cluster's store; what was put (maybe nothing)."""
        values = self._values(names)
        if values:
            raysecrets.put(
                self.settings.gcs_address, sid, values, self._environ, auth_token(self._environ)
            )
        return values

    def submit(self, sid: str, launch: TaskLaunch) -> None:
        values = self.hand_over(sid, launch.env_names)
        # The worker reads the handed-over names from its environment like its own.
        names = tuple(dict.fromkeys([*launch.env_names, *values]))
        body = launch.model_copy(update={"env_names": names}).model_dump_json()
        resources = {**self.settings.resources, **launch.resources}
        metadata = {"cpo_spec": launch.spec_id, "cpo_task": launch.task_id}
        metadata["cpo_attempt"] = str(launch.attempt)
        command = entrypoint(self.settings.python, body, sid if values else None)
        self.jobs.submit(sid, command, resources, metadata)

    def follow(self, sid: str, on_event: EventSink, limits: Limits | None = None) -> Exited:
        """The job's events to its end, from its first line; the verdict (`timeout` when
        the job outlived `limits` and was stopped here).

        A log stream that breaks (the dashboard restarted, a network blip) is opened again
        and the lines already seen are skipped, so each event is handed on once. Lines
        that are no event (Ray's own, a worker that could not start) are kept for the
        verdict of a worker that gave none."""
        watch = Backstop(limits or Limits(), lambda: self.jobs.stop(sid), on_event)
        with watch:
            exited = self._follow(sid, watch.on_event)
        if watch.fired and not exited.ok:
            return exited.model_copy(update={"reason": "timeout", "error": watch.why})
        return exited

    def _follow(self, sid: str, on_event: EventSink) -> Exited:
        stream, seen, other = EventStream(on_event), 0, deque[str](maxlen=3)
        for _ in range(TAIL_RETRIES):
            count = 0
            try:
                with closing(self.jobs.tail(sid)) as lines:
                    for line in lines:
                        count += 1
                        if count <= seen:
                            continue
                        seen = count
                        stream.feed(line)
                        if stream.exited is not None:
                            # The branch is pushed before the verdict is printed: no need
                            # to wait for Ray to notice the job ended (seconds).
                            return stream.exited
                        if not line.startswith("{") and line.strip():
                            other.append(line.strip())
            except RuntimeError:
                state = self.jobs.state(sid)
                if state is not None and not state.terminal:
                    continue
            break
        # The stream can close before its last lines: the job's whole log has them.
        rest = self.jobs.logs(sid).splitlines()[seen:] if self.jobs.state(sid) else []
        for line in rest:
            stream.feed(line)
            if stream.exited is not None:
                return stream.exited
        state = self.jobs.state(sid)
        status = state.status if state else "gone"
        detail = f"Ray job {sid} {status.lower()}"
        if state and state.message:
            detail += f" ({' '.join(state.message.split())[:200]})"
        if other:
            detail += f"; its last lines: {' | '.join(other)[:400]}"
        return stream.verdict(stopped=status == "STOPPED", detail=detail)


@dataclass(frozen=True)
class Limits:
    """Seconds after the worker started / after its last event when the job is stopped."""

    total: float | None = None
    idle: float | None = None

    @classmethod
    def of(cls, handle: Handle) -> Limits:
        def get(key: str) -> float | None:
            return float(handle.data[key]) if key in handle.data else None

        return cls(get("timeout"), get("idle_timeout"))


class Backstop:
    """Stops a job that outlives its limits, counted from the worker's `started` event
    (time waiting for a free slot on the cluster is not the task's)."""

    def __init__(self, limits: Limits, stop: Callable[[], object], sink: EventSink) -> None:
        self.limits, self._stop, self._sink = limits, stop, sink
        self.started: float | None = None
        self.last = time.monotonic()
        self.fired, self.why = False, ""
        self._done = threading.Event()

    def on_event(self, event: AnyEvent) -> None:
        self.last = time.monotonic()
        if isinstance(event, Started) and self.started is None:
            self.started = self.last
        self._sink(event)

    def __enter__(self) -> Backstop:
        if self.limits.total is not None or self.limits.idle is not None:
            threading.Thread(target=self._watch, daemon=True, name="ray-backstop").start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()

    def _watch(self) -> None:
        while not self._done.wait(0.5):
            if self.started is None:
                continue
            now, total, idle = time.monotonic(), self.limits.total, self.limits.idle
            if total is not None and now - self.started > total:
                self.why = f"the worker outlived its timeout ({total:.0f} s with the grace "
                self.why += "and cpo's margin): the Ray job was stopped"
            elif idle is not None and now - self.last > idle:
                self.why = f"the worker was silent past its idle timeout ({idle:.0f} s with "
                self.why += "the grace and cpo's margin): the Ray job was stopped"
            else:
                continue
            self.fired = True
            self._stop()
            return


def make_executor(options: Mapping[str, Any]) -> RayExecutor:
    import_client()
    try:
        import aiohttp  # noqa: F401  (Ray's log tail; only `ray[default]` installs it)
    except ImportError as exc:
        raise UsageError(
            "--executor ray needs `ray[default]` (Ray's job client), not plain `ray`",
            hint=INSTALL_HINT,
        ) from exc
    return RayExecutor(settings_from(options, os.environ))
