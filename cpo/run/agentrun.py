"""One agent process: its settings, request, spawning and stream parsing, for both commands.

`cpo run` (through `AgentRun`, which adds the task's logs and the completion-marker
verdict) and `cpo parallel` (cpo.adhoc) build their agents the same way: options by
precedence into `TaskSettings` (`resolve_settings`), a backend-neutral `AgentRequest`
(`agent_request`), and one `run_agent` that spawns the backend's argv with the prompt on
stdin and feeds each output line to the backend's parser as it arrives.

One attempt's agent, judged by the completion protocol, is cpo.run.attempt's; the task
runner (cpo.run.taskrun) decides when an agent runs and what happens around it
(worktrees, retries, records).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpo.agents.base import AgentEvent, AgentOutcome, AgentRequest, Backend
from cpo.git import agent_git_env
from cpo.logfile import DEFAULT_LOG_LIMIT
from cpo.plan.model import TaskSpec
from cpo.proc import ProcessRegistry, ProcResult, run_streaming
from cpo.run.protocol import COMPLETION_PROTOCOL
from cpo.settings import Settings


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
    log_limit: int = DEFAULT_LOG_LIMIT  # bytes per log file (setting logs.max_size)
    nudges: int = 0  # times an agent that stopped early is resumed (cpo.run.nudge)


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
    log_limit, _ = s.resolve("logs.max_size")
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
        log_limit=int(log_limit),
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
    task: TaskSpec,
    s: TaskSettings,
    worktree: Path,
    parallel_dir: Path,
    prompt: str,
    system_prompt: str = COMPLETION_PROTOCOL,
) -> AgentRequest:
    """A `cpo run` task's request: cpo's completion protocol as the system prompt (a
    conflict resolver has its own, cpo.run.resolve)."""
    return agent_request(
        s,
        task_id=task.id,
        wave=task.wave,
        prompt=prompt,
        worktree=worktree,
        parallel_dir=parallel_dir,
        system_prompt=system_prompt,
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
    on_line: Callable[[str, list[AgentEvent]], None],
    on_stderr: Callable[[str], None] = _ignore,
    on_stop: Callable[[str], None] = _ignore,
    mask: Callable[[str], str] = str,
    split: Callable[[str], int] = len,
) -> AgentExit:
    """Run the agent for `req` in its worktree with the prompt on stdin, to the end.

    Each stdout line is masked, parsed by the backend's parser and handed to `on_line`
    with its events, as it arrives and one line at a time (`split` says where a very
    long line may be cut). An event the backend calls fatal (say, a rejected key the
    CLI would retry for minutes) stops the agent at once, said through `on_stop`.
    """
    # gc.auto=0: background gc in an agent must not race cpo's worktree operations.
    env = agent_git_env(backend.env(req, base_env))
    argv = backend.argv(req)
    parser = backend.parser()
    lock = threading.Lock()
    abort = threading.Event()

    def stdout(line: str) -> None:
        with lock:
            # Masked once, before parsing: the events (log lines, actions) come from the
            # masked line, so none can hold a secret (the masker also knows each
            # secret's JSON-escaped spelling).
            line = mask(line)
            events = parser.feed(line)
            fatal = next((e.fatal for e in events if e.fatal), None)
            if fatal and not abort.is_set():
                on_stop(f"[cpo] stopping the agent: {fatal}")
                abort.set()
            on_line(line, events)

    def stderr(line: str) -> None:
        with lock:
            on_stderr(mask(line))

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
            split=split,
        )
    except OSError as exc:
        return AgentExit(None, AgentOutcome(), f"could not start {argv[0]}: {exc.strerror or exc}")
    return AgentExit(proc, parser.finish(proc.returncode, proc.stderr_tail))
