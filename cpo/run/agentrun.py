"""One agent process: its settings, request, spawning and stream parsing, for both commands.

`cpo run` (through `AgentRun`, which adds the task's logs and the completion-marker
verdict) and `cpo parallel` (cpo.adhoc) build their agents the same way: options by
precedence into `TaskSettings` (`resolve_settings`), a backend-neutral `AgentRequest`
(`agent_request`), and one `run_agent` that spawns the backend's argv with the prompt on
stdin and feeds each output line to the backend's parser as it arrives.

The task runner (cpo.run.taskrun) decides when an agent runs and what happens around it
(worktrees, retries, records).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from cpo.agents import get_backend
from cpo.agents.base import AgentEvent, AgentOutcome, AgentRequest, Backend
from cpo.config import Settings
from cpo.git import agent_git_env
from cpo.plan.model import TaskSpec
from cpo.proc import ProcessRegistry, ProcResult, run_streaming
from cpo.run.protocol import COMPLETION_PROTOCOL, read_marker, verdict
from cpo.run.report import now_iso
from cpo.secrets import Masker


# -- settings and request ----------------------------------------------------------------
@dataclass(frozen=True)
class AgentChoices:
    """The agent options one layer states (the command line, or a task); None: not said."""

    backend: str | None = None
    model: str | None = None
    max_turns: int | None = None
    permission_mode: str | None = None
    approval_mode: str | None = None
    sandbox_mode: str | None = None
    timeout: float | None = None
    idle_timeout: float | None = None
    agent: str | None = None  # claude: --agent NAME
    command: str | None = None  # the `command` backend's shell command
    extra_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskSettings:
    """Options for one task after precedence (flag > task > manifest > config > default)."""

    backend: str
    model: str | None
    max_turns: int | None
    permission_mode: str | None
    timeout: float | None
    idle_timeout: float | None
    retries: int
    agent_command: str | None
    backoff_base: float = 5.0
    approval_mode: str | None = None
    sandbox_mode: str | None = None
    extra_args: tuple[str, ...] = ()
    agent: str | None = None


def resolve_settings(
    settings: Settings,
    flag: AgentChoices,
    task: AgentChoices,
    *,
    retries: int = 0,
    backoff_base: float = 5.0,
) -> TaskSettings:
    """A task's effective agent options: flag > task > config files > default."""
    s = settings
    backend = str(s.resolve("default_backend", flag=flag.backend, task=task.backend)[0])

    def pick(key: str, name: str) -> Any:  # Settings values are typed by their key
        return s.resolve(key, flag=getattr(flag, name), task=getattr(task, name))[0]

    extra, _ = s.resolve(f"backends.{backend}.extra_args")
    return TaskSettings(
        backend=backend,
        model=pick(f"backends.{backend}.model", "model"),
        max_turns=pick(f"backends.{backend}.max_turns", "max_turns"),
        permission_mode=pick(f"backends.{backend}.permission_mode", "permission_mode"),
        timeout=pick("timeouts.task", "timeout"),
        idle_timeout=pick("timeouts.idle", "idle_timeout"),
        retries=retries,
        agent_command=flag.command or task.command,
        backoff_base=backoff_base,
        approval_mode=pick(f"backends.{backend}.approval_mode", "approval_mode"),
        sandbox_mode=pick(f"backends.{backend}.sandbox_mode", "sandbox_mode"),
        extra_args=(*(extra or ()), *flag.extra_args, *task.extra_args),
        agent=flag.agent or task.agent,
    )


def agent_request(
    s: TaskSettings,
    *,
    task_id: str,
    wave: int,
    prompt: str,
    worktree: Path,
    parallel_dir: Path,
    system_prompt: str,
) -> AgentRequest:
    """The backend-neutral request for one task under its effective settings."""
    return AgentRequest(
        task_id=task_id,
        wave=wave,
        prompt=prompt,
        worktree=worktree,
        parallel_dir=parallel_dir,
        system_prompt=system_prompt,
        agent=s.agent,
        model=s.model,
        max_turns=s.max_turns,
        permission_mode=s.permission_mode,
        approval_mode=s.approval_mode,
        sandbox_mode=s.sandbox_mode,
        command=s.agent_command,
        extra_args=s.extra_args,
    )


def task_request(
    task: TaskSpec, s: TaskSettings, worktree: Path, parallel_dir: Path, prompt: str
) -> AgentRequest:
    """A `cpo run` task's request: cpo's completion protocol as the system prompt."""
    return agent_request(
        s,
        task_id=task.id,
        wave=task.wave,
        prompt=prompt,
        worktree=worktree,
        parallel_dir=parallel_dir,
        system_prompt=COMPLETION_PROTOCOL,
    )


# -- one agent process -------------------------------------------------------------------
@dataclass(frozen=True)
class AgentExit:
    """How one agent process ended; `proc` is None when it could not be started."""

    proc: ProcResult | None
    outcome: AgentOutcome
    start_error: str | None = None


def _ignore(_line: str) -> None:
    return None


def run_agent(
    backend: Backend,
    req: AgentRequest,
    *,
    base_env: Mapping[str, str],
    timeout: float | None,
    idle_timeout: float | None,
    registry: ProcessRegistry,
    on_event: Callable[[AgentEvent], None],
    on_raw: Callable[[str], None] = _ignore,
    on_stderr: Callable[[str], None] = _ignore,
) -> AgentExit:
    """Run the agent for `req` in its worktree with the prompt on stdin, to the end.

    Each stdout line goes to `on_raw` and through the backend's parser to `on_event`, as
    it arrives and one line at a time. An event the backend calls fatal (say, a rejected
    key the CLI would retry for minutes) stops the agent at once.
    """
    # gc.auto=0: background gc in an agent must not race cpo's worktree operations.
    env = agent_git_env(backend.env(req, base_env))
    argv = backend.argv(req)
    parser = backend.parser()
    lock = threading.Lock()
    abort = threading.Event()

    def stdout(line: str) -> None:
        with lock:
            on_raw(line)
            for event in parser.feed(line):
                if event.fatal and not abort.is_set():
                    abort.set()
                    on_event(AgentEvent(log=f"[cpo] stopping the agent: {event.fatal}"))
                on_event(event)

    def stderr(line: str) -> None:
        with lock:
            on_stderr(line)

    try:
        proc = run_streaming(
            argv,
            cwd=req.worktree,
            env=env,
            stdin_text=req.prompt,
            on_stdout=stdout,
            on_stderr=stderr,
            timeout=timeout,
            idle_timeout=idle_timeout,
            registry=registry,
            abort=abort,
        )
    except OSError as exc:
        return AgentExit(None, AgentOutcome(), f"could not start {argv[0]}: {exc.strerror or exc}")
    return AgentExit(proc, parser.finish(proc.returncode, proc.stderr_tail))


# -- cpo run: one attempt of a task, with its logs and the marker verdict -----------------
@dataclass(frozen=True)
class AttemptResult:
    ok: bool
    reason: str | None
    error: str | None
    outcome: AgentOutcome
    proc: ProcResult | None


@dataclass(frozen=True)
class AgentRun:
    """What every agent run of one `cpo run` shares."""

    parallel_dir: Path
    logs_dir: Path
    registry: ProcessRegistry
    masker: Masker
    on_action: Callable[[TaskSpec, str], None]

    def run(
        self, task: TaskSpec, settings: TaskSettings, worktree: Path, attempt_no: int
    ) -> AttemptResult:
        """Run the agent once in `worktree`, streaming into the task's logs; its verdict."""
        req = task_request(task, settings, worktree, self.parallel_dir, task.prompt)
        base = dict(os.environ)
        base.update(
            CPO_TASK_ID=task.id,
            CPO_WAVE=str(task.wave),
            CPO_PARALLEL_DIR=str(self.parallel_dir),
            CPO_WORKTREE=str(worktree),
            CPO_ATTEMPT=str(attempt_no),
        )
        mask = self.masker.mask
        with (
            (self.logs_dir / f"{task.id}.log").open("a", encoding="utf-8") as logf,
            (self.logs_dir / f"{task.id}.jsonl").open("a", encoding="utf-8") as rawf,
        ):
            _write_header(logf, task, worktree, attempt_no, settings)

            def on_event(event: AgentEvent) -> None:
                if event.log:
                    _write(logf, mask(event.log))
                if event.action:
                    self.on_action(task, mask(event.action))

            ran = run_agent(
                get_backend(settings.backend),
                req,
                base_env=base,
                timeout=settings.timeout,
                idle_timeout=settings.idle_timeout,
                registry=self.registry,
                on_event=on_event,
                on_raw=lambda line: _write(rawf, mask(line)),
                on_stderr=lambda line: _write(logf, f"[stderr] {mask(line)}"),
            )
            if ran.proc is None:
                _write(logf, f"[cpo] {ran.start_error}")
                return AttemptResult(False, "crashed", ran.start_error, ran.outcome, None)
        marker = read_marker(worktree)
        reason, error = verdict(
            ran.proc, ran.outcome, marker.present, marker.says_incomplete, marker.data
        )
        return AttemptResult(reason is None, reason, error, ran.outcome, ran.proc)


def _write(f: IO[str], line: str) -> None:
    # Flushed line by line: `cpo status` and people tail these logs while the agent runs.
    f.write(line + "\n")
    f.flush()


def _write_header(
    logf: IO[str], task: TaskSpec, worktree: Path, attempt: int, s: TaskSettings
) -> None:
    logf.write(
        f"=== task {task.id} (wave {task.wave}) attempt {attempt} ===\n"
        f"worktree: {worktree}\nbranch:   {task.branch}\nbackend:  {s.backend}"
        f"{f' agent={task.agent}' if task.agent else ''}"
        f"{f' model={s.model}' if s.model else ''}\n"
        f"prompt:   {task.prompt_source}\nstart:    {now_iso()}\n\n"
    )
    logf.flush()
