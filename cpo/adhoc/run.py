"""`cpo parallel`: run a handful of prompts at once, each with the agent CLI it names.

The task file is clinvk's: ``{"tasks": [{"backend": "codex", "prompt": "..."}, ...],
"max_parallel": 3, "fail_fast": false, "output_dir": "results"}``. No manifest, no waves,
no merging: each task runs in its `workdir` (default: the current directory), or, with
``"worktree": true``, in a throwaway worktree (cpo.adhoc.worktree).

The agent path is `cpo run`'s: settings by precedence (flag > task > repo config > user
config > default) and the request from `cpo.run.agentrun`, the backend preflight and the
notes on options a backend cannot honour from `cpo.run.preflight`, the process from
`agentrun.run_agent`, and the verdict from `cpo.run.protocol.agent_verdict` (an ad-hoc
prompt has no completion marker to check).
"""

from __future__ import annotations

import os
import shlex
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from cpo.adhoc.result import AdhocResult, AdhocSummary, write_output_dir
from cpo.adhoc.taskfile import (
    AdhocFile,
    AdhocPlan,
    AdhocTask,
    TaskFileError,
    parse_task_file,
    read_task_source,
)
from cpo.adhoc.worktree import Throwaway, Worktrees
from cpo.agents import get_backend
from cpo.agents.base import AgentEvent, AgentRequest
from cpo.errors import CpoError, PreflightError
from cpo.proc import ProcessRegistry
from cpo.run.agentrun import AgentChoices, TaskSettings, agent_request, resolve_settings, run_agent
from cpo.run.preflight import BackendRequest, backend_problems, unsupported_notes
from cpo.run.protocol import agent_verdict
from cpo.settings import Settings


@dataclass(frozen=True)
class AdhocOptions:
    """Command-line flags (None: not given)."""

    max_parallel: int | None = None
    fail_fast: bool | None = None


# -- preparing each task ------------------------------------------------------------------
@dataclass(frozen=True)
class Prepared:
    index: int
    task: AdhocTask
    task_id: str
    settings: TaskSettings
    workdir: Path
    request: AgentRequest

    @property
    def backend_request(self) -> BackendRequest:
        return self.settings.backend, self.request


def prepare(plan: AdhocPlan, settings: Settings, cwd: Path) -> list[Prepared]:
    """Resolve every task's backend, options and directory; all problems at once."""
    problems: list[str] = []
    out: list[Prepared] = []
    for i, task in enumerate(plan.file.tasks):
        workdir = (cwd / task.workdir).resolve() if task.workdir else cwd.resolve()
        if not workdir.is_dir():
            problems.append(f"{plan.source}: tasks[{i}].workdir: {workdir} is not a directory")
        choices = AgentChoices(
            backend=task.backend,
            model=task.model,
            max_turns=task.max_turns,
            approval_mode=task.approval_mode,
            sandbox_mode=task.sandbox_mode,
            timeout=task.timeout,
            command=task.command,
            extra_args=task.extra,
        )
        s = resolve_settings(settings, AgentChoices(), choices)
        task_id = task.id or f"task-{i + 1}"
        req = agent_request(
            s,
            task_id=task_id,
            wave=0,
            prompt=task.prompt,
            worktree=workdir,
            parallel_dir=workdir,
            system_prompt=task.system_prompt or "",
        )
        out.append(Prepared(i, task, task_id, s, workdir, req))
    if problems:
        raise TaskFileError(problems)
    return out


def preflight(tasks: list[Prepared], env: Mapping[str, str]) -> None:
    """Ask each backend about the tasks that will really run; stop before any starts."""
    problems = backend_problems((p.backend_request for p in tasks if not p.task.dry_run), env)
    if problems:
        raise PreflightError(problems[0], hint="\n".join(problems[1:]) or None)


# -- running --------------------------------------------------------------------------
def run_plan(
    plan: AdhocPlan,
    tasks: list[Prepared],
    *,
    max_parallel: int,
    fail_fast: bool,
    env: Mapping[str, str],
    on_result: Callable[[AdhocResult], None] = lambda _r: None,
    on_log: Callable[[str, str], None] = lambda _tid, _line: None,
    registry: ProcessRegistry | None = None,
) -> AdhocSummary:
    """Run the tasks, at most `max_parallel` at once; results in file order."""
    registry = registry or ProcessRegistry()
    worktrees = Worktrees()
    start = time.monotonic()
    stop = threading.Event()
    first_failure: list[str] = []
    lock = threading.Lock()

    def one(p: Prepared) -> AdhocResult:
        if stop.is_set():
            result = _result(p, error=f"not run: fail_fast after {first_failure[0]} failed")
        else:
            result = run_task(p, env=env, registry=registry, worktrees=worktrees, on_log=on_log)
            if (
                not result.success
                and stop.is_set()
                and first_failure
                and first_failure[0] != p.task_id
            ):
                result = replace(
                    result, error=f"stopped: fail_fast after {first_failure[0]} failed"
                )
        with lock:
            if not result.success and fail_fast and not stop.is_set():
                first_failure.append(p.task_id)
                stop.set()
                registry.terminate_all(immediately=False)
            on_result(result)  # under the lock: one whole line at a time
        return result

    registry.start_watchdog()
    try:
        with ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="cpo-task") as pool:
            futures = [pool.submit(one, p) for p in tasks]
            try:
                results = tuple(f.result() for f in futures)
            except BaseException:
                # Ctrl-C: stop the agents before the pool waits for its threads, or the
                # wait would last as long as the slowest agent.
                for f in futures:
                    f.cancel()
                registry.terminate_all()
                raise
    finally:
        registry.stop_watchdog()
    return AdhocSummary(results, time.monotonic() - start)


def _result(
    p: Prepared,
    *,
    error: str | None,
    output: str = "",
    duration: float = 0.0,
    exit_code: int | None = None,
    worktree: str | None = None,
    session_id: str | None = None,
) -> AdhocResult:
    return AdhocResult(
        index=p.index,
        task_id=p.task_id,
        task_name=p.task.name or p.task_id,
        backend=p.settings.backend,
        success=error is None,
        output=output,
        duration_seconds=duration,
        exit_code=exit_code,
        error=error,
        tags=p.task.tags,
        meta=p.task.meta,
        worktree=worktree,
        session_id=session_id,
    )


def run_task(
    p: Prepared,
    *,
    env: Mapping[str, str],
    registry: ProcessRegistry,
    worktrees: Worktrees | None = None,
    on_log: Callable[[str, str], None] = lambda _tid, _line: None,
) -> AdhocResult:
    started = time.monotonic()
    backend = get_backend(p.settings.backend)
    if p.task.dry_run:
        argv = shlex.join(backend.argv(p.request))
        where = f"(in a new worktree of {p.workdir})" if p.task.worktree else f"(in {p.workdir})"
        return _result(p, error=None, output=f"dry run: {argv} {where}", exit_code=0)
    req = p.request
    throwaway: Throwaway | None = None
    if p.task.worktree:
        try:
            throwaway = (worktrees or Worktrees()).add(p.workdir, p.task_id)
        except CpoError as exc:
            return _result(p, error=exc.message, duration=time.monotonic() - started)
        req = replace(req, worktree=throwaway.taskdir, parallel_dir=throwaway.taskdir)

    def on_line(_line: str, events: list[AgentEvent]) -> None:
        for event in events:
            if event.log and p.task.verbose:
                on_log(p.task_id, event.log)

    def say(line: str) -> None:
        if p.task.verbose:
            on_log(p.task_id, line)

    ran = run_agent(
        backend,
        req,
        base_env={**env, "CPO_TASK_ID": p.task_id, "CPO_WORKTREE": str(req.worktree)},
        timeout=p.settings.timeout,
        idle_timeout=p.settings.idle_timeout,
        registry=registry,
        on_line=on_line,
        on_stderr=say,
        on_stop=say,
    )
    kept = throwaway.finish() if throwaway is not None else None
    if ran.proc is None:
        return _result(p, error=ran.start_error, duration=time.monotonic() - started, worktree=kept)
    reason, text = agent_verdict(ran.proc, ran.outcome)
    return _result(
        p,
        error=None if reason is None else f"{reason}: {text}" if text else reason,
        output=ran.outcome.final_text or "",
        duration=ran.proc.duration,
        exit_code=ran.proc.returncode,
        worktree=kept,
        session_id=ran.outcome.session_id,
    )


def run_adhoc(
    text: str,
    source: str,
    *,
    options: AdhocOptions,
    settings: Settings,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    on_result: Callable[[AdhocResult], None] = lambda _r: None,
    on_log: Callable[[str, str], None] = lambda _tid, _line: None,
    warn: Callable[[str], None] = lambda _w: None,
    registry: ProcessRegistry | None = None,
) -> tuple[AdhocPlan, AdhocSummary]:
    """The whole of `cpo parallel`: parse, resolve, preflight, run, write output_dir."""
    env = dict(os.environ) if env is None else env
    plan = parse_task_file(text, source)
    for line in (*settings.warnings, *plan.warnings):
        warn(line)
    tasks = prepare(plan, settings, cwd)
    for note in unsupported_notes(p.backend_request for p in tasks):
        warn(note)
    preflight(tasks, env)
    max_parallel, _ = settings.resolve(
        "parallel.max_workers", flag=options.max_parallel, manifest=plan.file.max_parallel
    )
    fail_fast, _ = settings.resolve(
        "parallel.fail_fast", flag=options.fail_fast, manifest=plan.file.fail_fast
    )
    summary = run_plan(
        plan,
        tasks,
        max_parallel=int(max_parallel),
        fail_fast=bool(fail_fast),
        env=env,
        on_result=on_result,
        on_log=on_log,
        registry=registry,
    )
    if plan.file.output_dir:
        write_output_dir(cwd / plan.file.output_dir, plan, summary)
    return plan, summary


__all__ = [
    "AdhocFile",
    "AdhocOptions",
    "AdhocPlan",
    "AdhocResult",
    "AdhocSummary",
    "AdhocTask",
    "TaskFileError",
    "parse_task_file",
    "preflight",
    "prepare",
    "read_task_source",
    "run_adhoc",
    "run_plan",
    "run_task",
    "write_output_dir",
]
