"""The `subprocess` executor: each attempt by `cpo worker run-task` as a child process here.

Everything a cluster worker does (a fresh clone from the git remote, the agent, the push,
JSON-lines events) without a cluster: what the remote path needs, on one machine, and
what a cluster job's entrypoint runs. The worker stops its agent when it gets SIGTERM or
its parent (this coordinator) dies, so `cancel` signals only the worker.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cpo.executors.base import EventSink, Executor
from cpo.executors.spec import Exited, Handle, TaskLaunch
from cpo.executors.stream import EventStream
from cpo.proc import ProcessRegistry, run_streaming

NAME = "subprocess"
# After SIGTERM the worker stops its agent (its own grace) and pushes what was done.
WORKER_GRACE_EXTRA = 30.0


class SubprocessExecutor:
    name = NAME

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self._lock = threading.Lock()
        self._running: dict[str, ProcessRegistry] = {}

    def handle(self, launch: TaskLaunch) -> Handle:
        return Handle(
            executor=NAME, id=f"{launch.spec_id}/{launch.task_id}/attempt-{launch.attempt}"
        )

    def run(self, launch: TaskLaunch, on_event: EventSink) -> Exited:
        handle = self.handle(launch)
        registry = ProcessRegistry(grace=launch.grace + WORKER_GRACE_EXTRA)
        with self._lock:
            self._running[handle.id] = registry
        stream = EventStream(on_event)
        try:
            proc = run_streaming(
                [sys.executable, "-m", "cpo", "worker", "run-task", "-"],
                cwd=self.cwd,
                env=os.environ,
                stdin_text=launch.model_dump_json(),
                on_stdout=stream.feed,
                registry=registry,
            )
        except OSError as exc:
            return Exited(ok=False, reason="crashed", error=f"could not start the worker: {exc}")
        finally:
            with self._lock:
                self._running.pop(handle.id, None)
        tail = proc.stderr_tail.strip().splitlines()
        detail = f"exit code {proc.returncode}" + (f": {tail[-1]}" if tail else "")
        return stream.verdict(stopped=proc.interrupted, detail=detail)

    def adopt(self, handle: Handle, on_event: EventSink) -> Exited | None:
        return None  # a child's output cannot be read again by another coordinator

    def cancel(self, handle: Handle) -> None:
        with self._lock:
            registry = self._running.get(handle.id)
        if registry is not None:
            registry.terminate_all()


def make_executor(options: Mapping[str, Any]) -> Executor:
    return SubprocessExecutor(Path(str(options.get("cwd", "."))))
