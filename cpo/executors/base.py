"""What an executor is, and the executors by name.

An executor runs one attempt of a task from its `TaskLaunch` and tells what happens as
events; it blocks until the attempt ends (on a scheduler worker thread, inside an agent
slot) and returns the `Exited` verdict. The coordinator then fetches the launch's branch
from the remote and records the attempt exactly as a local one (cpo.run.remote), so the
scheduler, merges, validation, report and UI never know which executor ran a task.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from cpo.errors import UsageError
from cpo.executors.spec import AnyEvent, Exited, Handle, TaskLaunch

# What an executor hands each event to (any thread; one event at a time per attempt).
EventSink = Callable[[AnyEvent], None]

# name -> module defining `make_executor(options) -> Executor`; `local` is the run
# engine's own (agents in worktrees here, cpo.run.taskrun), so it has no module.
LOCAL = "local"
_MODULES = {
    "subprocess": "cpo.executors.subproc",
    "ray": "cpo.executors.ray",
}


class Executor(Protocol):
    name: str

    def handle(self, launch: TaskLaunch) -> Handle:
        """The handle the launch will have: known before it starts (report.json gets it
        first, so a coordinator killed meanwhile can adopt the attempt)."""
        ...

    def run(self, launch: TaskLaunch, on_event: EventSink) -> Exited:
        """Run the attempt to its end, events to `on_event`; its verdict. A worker that
        ends without a verdict (killed, lost) gives one: `crashed`, `interrupted`."""
        ...

    def adopt(self, handle: Handle, on_event: EventSink) -> Exited | None:
        """Re-attach to an attempt a previous coordinator started: its remaining events
        and its verdict; None when it cannot be followed (gone, or this executor cannot
        re-attach): the coordinator then starts a new attempt."""
        ...

    def cancel(self, handle: Handle) -> None:
        """Stop the attempt (its agent's whole process tree); `run` then returns."""
        ...


def executor_names() -> list[str]:
    return [LOCAL, *_MODULES]


def load_executor(name: str, options: Mapping[str, Any]) -> Executor:
    """The executor called `name`, made with `options` (say, a cluster address). A
    UsageError, with the fix, when it is unknown or its extra is not installed."""
    if name not in _MODULES:
        raise UsageError(
            f"--executor {name}: unknown executor",
            hint=f"choose one of: {', '.join(executor_names())}",
        )
    try:
        module = importlib.import_module(_MODULES[name])
    except ModuleNotFoundError as exc:
        if exc.name == _MODULES[name]:
            raise UsageError(f"--executor {name} is not available in this version of cpo") from exc
        raise UsageError(
            f"--executor {name} needs the package {exc.name}, which is not installed",
            hint=f"pip install 'cpo-orchestrator[{name}]'",
        ) from exc
    make: Callable[[Mapping[str, Any]], Executor] = module.make_executor
    return make(options)
