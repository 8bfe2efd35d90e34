"""One agent process for a task: its command line, environment, logs and verdict.

The task runner (cpo.run.taskrun) decides when an agent runs and what happens around it
(worktrees, retries, records); this module runs it once: the backend's argv and env, the
prompt on stdin, every output line masked into `logs/<id>.log` (readable) and
`logs/<id>.jsonl` (raw) as it arrives, and the success rule of DESIGN 4 applied to the
result and the completion marker.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cpo.agents import get_backend
from cpo.agents.base import AgentOutcome, AgentRequest
from cpo.git import agent_git_env
from cpo.logfile import DEFAULT_LOG_LIMIT, CappedLog
from cpo.plan.model import TaskSpec
from cpo.proc import ProcessRegistry, ProcResult, run_streaming
from cpo.run.protocol import COMPLETION_PROTOCOL, read_marker, verdict
from cpo.run.report import now_iso
from cpo.secrets import Masker


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
    log_limit: int = DEFAULT_LOG_LIMIT  # bytes per log file (setting logs.max_size)


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
        backend = get_backend(settings.backend)
        req = agent_request(task, settings, worktree, self.parallel_dir, task.prompt)
        base = dict(os.environ)
        base.update(
            CPO_TASK_ID=task.id,
            CPO_WAVE=str(task.wave),
            CPO_PARALLEL_DIR=str(self.parallel_dir),
            CPO_WORKTREE=str(worktree),
            CPO_ATTEMPT=str(attempt_no),
        )
        env = agent_git_env(backend.env(req, base))
        argv = backend.argv(req)
        parser = backend.parser()
        log_path = self.logs_dir / f"{task.id}.log"
        raw_path = self.logs_dir / f"{task.id}.jsonl"
        mask = self.masker.mask
        with (
            CappedLog(log_path, settings.log_limit, lambda m: f"[cpo] {m}") as logf,
            CappedLog(raw_path, settings.log_limit, _json_notice) as rawf,
        ):
            _write_header(logf, task, worktree, attempt_no, settings)
            lock = threading.Lock()
            abort = threading.Event()

            def on_stdout(line: str) -> None:
                with lock:
                    # Masked once, before parsing: the events (log lines, actions) come
                    # from the masked line, so none can hold a secret (the masker also knows
                    # each secret's JSON-escaped spelling).
                    line = mask(line)
                    rawf.write(line)
                    for event in parser.feed(line):
                        if event.fatal and not abort.is_set():
                            logf.note(f"[cpo] stopping the agent: {event.fatal}")
                            abort.set()
                        if event.log:
                            logf.write(event.log)
                        if event.action:
                            self.on_action(task, event.action)
                    logf.flush()
                    rawf.flush()

            def on_stderr(line: str) -> None:
                with lock:
                    logf.write(f"[stderr] {mask(line)}")
                    logf.flush()

            try:
                proc = run_streaming(
                    argv,
                    cwd=worktree,
                    env=env,
                    stdin_text=task.prompt,
                    on_stdout=on_stdout,
                    on_stderr=on_stderr,
                    timeout=settings.timeout,
                    idle_timeout=settings.idle_timeout,
                    registry=self.registry,
                    abort=abort,
                    split=self.masker.safe_split,
                )
            except OSError as exc:
                text = f"could not start {argv[0]}: {exc.strerror or exc}"
                logf.note(f"[cpo] {text}")
                return AttemptResult(False, "crashed", text, AgentOutcome(), None)
        outcome = parser.finish(proc.returncode, proc.stderr_tail)
        marker = read_marker(worktree)
        reason, error = verdict(proc, outcome, marker.present, marker.says_incomplete, marker.data)
        return AttemptResult(reason is None, reason, error, outcome, proc)


def agent_request(
    task: TaskSpec, settings: TaskSettings, worktree: Path, parallel_dir: Path, prompt: str
) -> AgentRequest:
    """The backend-neutral request for one task under its effective settings."""
    return AgentRequest(
        task_id=task.id,
        wave=task.wave,
        prompt=prompt,
        worktree=worktree,
        parallel_dir=parallel_dir,
        system_prompt=COMPLETION_PROTOCOL,
        agent=task.agent,
        model=settings.model,
        max_turns=settings.max_turns,
        permission_mode=settings.permission_mode,
        approval_mode=settings.approval_mode,
        sandbox_mode=settings.sandbox_mode,
        command=settings.agent_command,
        extra_args=settings.extra_args,
    )


def _write_header(
    logf: CappedLog, task: TaskSpec, worktree: Path, attempt: int, s: TaskSettings
) -> None:
    logf.note(
        f"=== task {task.id} (wave {task.wave}) attempt {attempt} ===\n"
        f"worktree: {worktree}\nbranch:   {task.branch}\nbackend:  {s.backend}"
        f"{f' agent={task.agent}' if task.agent else ''}"
        f"{f' model={s.model}' if s.model else ''}\n"
        f"prompt:   {task.prompt_source}\nstart:    {now_iso()}\n"
    )
    logf.flush()


def _json_notice(message: str) -> str:
    """cpo's notice as a line of the raw event log, which stays JSON lines."""
    return json.dumps({"type": "cpo", "message": message})
