"""The worker program: one attempt of one task from its `TaskLaunch`, events on stdout.

Every line on stdout is one JSON event (cpo.executors.spec): `started`, then `log` and
`agent_event` lines as the agent works, and last `exited`, which is printed whatever
happens (a git failure, a stop signal) so the coordinator always gets a verdict. Exit
code: 0 the task succeeded, 1 it failed, 2 the launch could not be read, 3 git or cpo
failed around the agent, 130 stopped by a signal or the parent's death.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from cpo.agents.base import AgentRequest
from cpo.errors import CpoError, ExitCode, UsageError
from cpo.executors.spec import AnyEvent, Exited, LogLine, Started, TaskLaunch, dump_event
from cpo.git import Git
from cpo.orphans import Adopter
from cpo.proc import ProcessRegistry
from cpo.run.attempt import exited_of
from cpo.run.claim import clear_marker, hand_over
from cpo.run.protocol import COMPLETION_PROTOCOL, read_marker
from cpo.run.stash import read_stash
from cpo.run.taskenv import expand
from cpo.secrets import Masker
from cpo.worker.checkout import clone_branch, push_branch
from cpo.worker.lifeline import Lifeline
from cpo.worker.prep import Readied, WorkerAgent, setup_clone, take_ports
from cpo.worker.stashed import stash_checked

# Where the worker's clones go (default: the system's temp folder); each is removed after.
WORKDIR_VAR = "CPO_WORKER_DIR"


class LaunchError(UsageError):
    """A task launch that is not one: each problem on its own line."""

    def __init__(self, problems: list[str]) -> None:
        hint = "a task launch is what `cpo run --executor` sends (cpo/executors/spec.py)"
        super().__init__(problems[0], hint=hint)
        self.problems = problems

    def lines(self) -> list[str]:
        return [*self.problems, *([self.hint] if self.hint else [])]


def read_launch(source: str) -> TaskLaunch:
    """The launch in file `source`, or on stdin for `-`; one line per problem if bad."""
    name = "stdin" if source == "-" else source
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{name}: cannot read the task launch: {exc.strerror or exc}") from exc
    try:
        return TaskLaunch.model_validate_json(text)
    except ValidationError as exc:
        problems = [
            f"{name}: {'.'.join(str(p) for p in e['loc']) or 'launch'}: {e['msg']}"
            for e in exc.errors()
        ]
        raise LaunchError(problems) from exc


class Emitter:
    """Events as JSON lines on `out`, whole lines only, whatever thread sends them.

    Once `out` is gone (the reader died: a closed pipe), `on_lost` is called, once.
    """

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._lock = threading.Lock()
        self.lost = False
        self.on_lost: Callable[[str], None] = lambda _why: None

    def __call__(self, event: AnyEvent) -> None:
        with self._lock:
            if self.lost:
                return
            try:
                self.out.write(dump_event(event) + "\n")
                self.out.flush()
            except (OSError, ValueError):
                self.lost = True
        if self.lost:
            self.on_lost("the reader of the worker's output is gone")

    def note(self, text: str) -> None:
        self(LogLine(text=text, cpo=True))


def run_task(launch: TaskLaunch, out: TextIO, *, keep: bool = False) -> int:
    """Run the launch's attempt to its end, events on `out`; the exit code."""
    emit = Emitter(out)
    registry = ProcessRegistry(grace=launch.grace)
    env = {**os.environ, **expand(launch.env.items(), os.environ)}
    masker = Masker(env)  # the spec's `env:` values too, as expanded here
    adopter = Adopter()  # what escapes the agent's group is re-parented to us, and ended
    tmp = Path(tempfile.mkdtemp(prefix=f"cpo-worker-{launch.task_id}-", dir=_workdir_root()))
    workdir = tmp / "work"
    kept = False  # the clone holds work found nowhere else (cpo.worker.stashed)
    lifeline = Lifeline(registry, emit.note)
    emit.on_lost = lifeline.stop
    try:
        with lifeline:
            emit(Started(host=socket.gethostname(), pid=os.getpid(), workdir=str(workdir)))
            registry.start_watchdog()
            exited, kept = _attempt(launch, workdir, env, registry, masker, emit)
            code = ExitCode.OK if exited.ok else ExitCode.FAILED
    except CpoError as exc:
        exited = Exited(ok=False, reason="git_error", error=masker.mask(exc.message))
        code = ExitCode.INTERNAL
    except Exception as exc:  # a bug must still give the coordinator a verdict
        traceback.print_exc(file=sys.stderr)
        error = masker.mask(f"{type(exc).__name__}: {exc}")
        exited = Exited(ok=False, reason="internal_error", error=error)
        code = ExitCode.INTERNAL
    finally:
        if registry.live_count():
            registry.terminate_all()
        registry.stop_watchdog()
        adopter.finish()
        if not keep and not kept:
            shutil.rmtree(tmp, ignore_errors=True)
    if lifeline.stopped is not None:
        code = ExitCode.INTERRUPTED
    emit(exited)
    return int(code)


def _workdir_root() -> str | None:
    root = os.environ.get(WORKDIR_VAR)
    if root:
        Path(root).mkdir(parents=True, exist_ok=True)
    return root or None


def _attempt(
    launch: TaskLaunch,
    workdir: Path,
    env: dict[str, str],
    registry: ProcessRegistry,
    masker: Masker,
    emit: Emitter,
) -> tuple[Exited, bool]:
    """The attempt's end, and whether its clone must be kept (`stash_checked`)."""
    git = clone_branch(launch, workdir)
    start, task_id = launch.start_commit, launch.task_id
    for name in launch.env_names:
        if name not in os.environ:
            emit.note(f"[cpo] warning: {name} is not set in the worker's environment")
    readied = Readied()
    # What the agent does to the clone's stash is judged as under local (cpo.run.stash).
    stash_before = read_stash(git)

    def note(text: str) -> None:
        emit.note(masker.mask(text))  # setup commands print what they like

    try:
        env = {**env, "CPO_WORKTREE": str(workdir), **take_ports(launch, readied, note)}
        req = _request(launch, workdir)
        result = setup_clone(launch, req, env, registry, readied, note)
        warnings: list[str] = []
        if result is None:
            # Just before the agent: a marker counts only if this attempt's agent writes it.
            warnings = [w for w in [clear_marker(git, workdir, start, task_id)] if w]
            agent = WorkerAgent(launch, git, env, registry, masker, emit)
            result = agent.run(req, readied)
    finally:
        readied.release()
    marker = read_marker(workdir)  # before hand_over, which may remove a committed one
    work = hand_over(git, workdir, task_id, launch.branch, start, launch.attempt, ok=result.ok)
    work, kept = stash_checked(git, launch, workdir, stash_before, work, masker.mask)
    exited = exited_of(result, work, marker, emit.note, masker.mask)
    update = {"warnings": (*warnings, *exited.warnings), **readied.record()}
    exited = exited.model_copy(update=update)
    return _pushed(git, launch, exited, masker), kept


def _pushed(git: Git, launch: TaskLaunch, exited: Exited, masker: Masker) -> Exited:
    """`exited` once its branch is on the remote; failed if it could not get there (the
    work would be lost to the coordinator)."""
    if exited.head == launch.start_commit:
        return exited  # nothing to push: the remote branch is already there
    try:
        push_branch(git, launch)
    except CpoError as exc:
        error = masker.mask(f"could not push {launch.branch}: {exc.message}")
        if not exited.ok:  # an earlier failure stays the reason
            return exited.model_copy(update={"warnings": (*exited.warnings, error)})
        return exited.model_copy(update={"ok": False, "reason": "push_failed", "error": error})
    return exited


def _request(launch: TaskLaunch, workdir: Path) -> AgentRequest:
    """The agent's request, as `cpo run` makes it (cpo.run.agentrun.task_request)."""
    return AgentRequest(
        task_id=launch.task_id,
        wave=launch.wave,
        prompt=launch.prompt,
        worktree=workdir,
        parallel_dir=workdir,
        system_prompt=COMPLETION_PROTOCOL,
        # AgentLaunch's fields are AgentRequest's, by name.
        **launch.agent.model_dump(exclude={"backend"}),
    )
