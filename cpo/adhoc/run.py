"""`cpo parallel`: run a handful of prompts at once, each with the agent CLI it names.

The task file is clinvk's: ``{"tasks": [{"backend": "codex", "prompt": "..."}, ...],
"max_parallel": 3, "fail_fast": false, "output_dir": "results"}``. No manifest, no waves,
no merging: each task runs in its `workdir` (default: the current directory), or, with
``"worktree": true``, in a throwaway `git worktree add --detach` of that directory's
repository, removed afterwards only when the agent left nothing in it.

Values come by precedence flag > task > repo config > user config > default (see
`cpo.config`). Options a backend cannot honour are said once, never dropped silently.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shlex
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cpo.adhoc.result import AdhocResult, AdhocSummary, safe_name, write_output_dir
from cpo.adhoc.taskfile import (
    AdhocFile,
    AdhocPlan,
    AdhocTask,
    TaskFileError,
    parse_task_file,
    read_task_source,
)
from cpo.agents import get_backend
from cpo.agents.base import AgentOutcome, AgentRequest, Backend
from cpo.config import Settings
from cpo.errors import CpoError, PreflightError
from cpo.proc import ProcessRegistry, ProcResult, run_streaming


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
    backend_name: str
    backend: Backend
    workdir: Path
    request: AgentRequest
    timeout: float | None
    idle_timeout: float | None
    notes: tuple[str, ...]


def prepare(plan: AdhocPlan, settings: Settings, cwd: Path) -> list[Prepared]:
    """Resolve every task's backend, options and directory; all problems at once."""
    problems: list[str] = []
    out: list[Prepared] = []
    for i, task in enumerate(plan.file.tasks):
        where = f"{plan.source}: tasks[{i}]"
        name, _ = settings.resolve("default_backend", task=task.backend)
        backend = get_backend(name)
        workdir = (cwd / task.workdir).resolve() if task.workdir else cwd.resolve()
        if not workdir.is_dir():
            problems.append(f"{where}.workdir: {workdir} is not a directory")
        conf = settings.backend(name)
        task_id = task.id or f"task-{i + 1}"
        timeout, _ = settings.resolve("timeouts.task", task=task.timeout)
        idle, _ = settings.resolve("timeouts.idle")
        req = AgentRequest(
            task_id=task_id,
            wave=0,
            prompt=task.prompt,
            worktree=workdir,
            parallel_dir=workdir,
            system_prompt=task.system_prompt or "",
            model=settings.resolve(f"backends.{name}.model", task=task.model)[0],
            max_turns=settings.resolve(f"backends.{name}.max_turns", task=task.max_turns)[0],
            permission_mode=conf.permission_mode,
            approval_mode=settings.resolve(
                f"backends.{name}.approval_mode", task=task.approval_mode
            )[0],
            sandbox_mode=settings.resolve(f"backends.{name}.sandbox_mode", task=task.sandbox_mode)[
                0
            ],
            command=task.command,
            extra_args=(*conf.extra_args, *task.extra),
        )
        out.append(
            Prepared(
                i, task, task_id, name, backend, workdir, req, timeout, idle, _notes(backend, req)
            )
        )
    if problems:
        raise TaskFileError(problems)
    return out


def _notes(backend: Backend, req: AgentRequest) -> tuple[str, ...]:
    fn: Callable[[AgentRequest], list[str]] | None = getattr(backend, "unsupported", None)
    if fn is None:
        fn = getattr(importlib.import_module(type(backend).__module__), "unsupported", None)
    return tuple(fn(req)) if fn else ()


def preflight(tasks: list[Prepared], env: Mapping[str, str]) -> None:
    """Ask each backend about the tasks that will really run; stop before any starts."""
    problems: list[str] = []
    by_backend: dict[str, list[Prepared]] = {}
    for p in tasks:
        if not p.task.dry_run:
            by_backend.setdefault(p.backend_name, []).append(p)
    for _name, group in by_backend.items():
        problems += group[0].backend.preflight([p.request for p in group], env)
    if problems:
        raise PreflightError(problems[0], hint="\n".join(problems[1:]) or None)


# -- running --------------------------------------------------------------------------
class _Worktrees:
    """Throwaway detached worktrees, one git lock per repository."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gits: dict[Path, Any] = {}

    def _git(self, workdir: Path) -> Any:
        from cpo.git import Git, find_repo

        root = find_repo(workdir)
        with self._lock:
            if root not in self._gits:
                self._gits[root] = Git(root)
            return self._gits[root]

    def add(self, workdir: Path, task_id: str) -> tuple[Any, Path, str, Path]:
        git = self._git(workdir)
        head = git.run("rev-parse", "HEAD")
        holder = Path(tempfile.mkdtemp(prefix=f"cpo-parallel-{safe_name(task_id)}-"))
        path = holder / "worktree"
        with git.lock:
            git.run("worktree", "add", "-q", "--detach", str(path), head)
        # The task runs in the same place inside the worktree as workdir is in the repo.
        sub = workdir.resolve().relative_to(git.root)
        return git, path, head, path / sub

    @staticmethod
    def finish(git: Any, path: Path, head: str) -> bool:
        """Remove the worktree if the agent left nothing in it; True when removed."""
        changed = bool(git.run("status", "--porcelain", "--untracked-files=all", cwd=path))
        moved = git.run("rev-parse", "HEAD", cwd=path) != head
        if changed or moved:
            return False
        git.remove_worktree(path, force=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()
        return True


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
    worktrees = _Worktrees()
    start = time.monotonic()
    stop = threading.Event()
    first_failure: list[str] = []
    lock = threading.Lock()

    def one(p: Prepared) -> AdhocResult:
        if stop.is_set():
            result = _result(
                p, success=False, error=f"not run: fail_fast after {first_failure[0]} failed"
            )
        else:
            result = run_task(p, env=env, registry=registry, worktrees=worktrees, on_log=on_log)
            if (
                not result.success
                and stop.is_set()
                and first_failure
                and first_failure[0] != p.task_id
            ):
                result = _replace_error(
                    result, f"stopped: fail_fast after {first_failure[0]} failed"
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


def _result(p: Prepared, *, success: bool, **kw: Any) -> AdhocResult:
    return AdhocResult(
        index=p.index,
        task_id=p.task_id,
        task_name=p.task.name or p.task_id,
        backend=p.backend_name,
        success=success,
        tags=p.task.tags,
        meta=p.task.meta,
        **kw,
    )


def _replace_error(r: AdhocResult, error: str) -> AdhocResult:
    return replace(r, error=error)


def run_task(
    p: Prepared,
    *,
    env: Mapping[str, str],
    registry: ProcessRegistry,
    worktrees: _Worktrees | None = None,
    on_log: Callable[[str, str], None] = lambda _tid, _line: None,
) -> AdhocResult:
    started = time.monotonic()
    if p.task.dry_run:
        argv = p.backend.argv(p.request)
        where = f"(in a new worktree of {p.workdir})" if p.task.worktree else f"(in {p.workdir})"
        return _result(p, success=True, output=f"dry run: {shlex.join(argv)} {where}", exit_code=0)
    git = path = head = None
    req = p.request
    try:
        if p.task.worktree:
            git, path, head, taskdir = (worktrees or _Worktrees()).add(p.workdir, p.task_id)
            req = _with_dir(req, taskdir)
        proc, outcome = _spawn(p, req, env, registry, on_log)
    except (CpoError, OSError) as exc:
        text = exc.message if isinstance(exc, CpoError) else f"cannot start: {exc}"
        return _result(p, success=False, error=text, duration_seconds=time.monotonic() - started)
    kept: str | None = None
    if git is not None and path is not None and head is not None:
        try:
            if not _Worktrees.finish(git, path, head):
                kept = str(path)
        except CpoError:
            kept = str(path)
    success, error = _judge(proc, outcome, p)
    return _result(
        p,
        success=success,
        output=outcome.final_text or "",
        duration_seconds=proc.duration,
        exit_code=proc.returncode,
        error=error,
        worktree=kept,
        session_id=outcome.session_id,
    )


def _with_dir(req: AgentRequest, where: Path) -> AgentRequest:
    return replace(req, worktree=where, parallel_dir=where)


def _spawn(
    p: Prepared,
    req: AgentRequest,
    env: Mapping[str, str],
    registry: ProcessRegistry,
    on_log: Callable[[str, str], None],
) -> tuple[ProcResult, AgentOutcome]:
    backend = p.backend
    parser = backend.parser()
    from cpo.git import agent_git_env

    # gc.auto=0: background gc in an agent must not race cpo's worktree operations.
    base = agent_git_env({**env, "CPO_TASK_ID": p.task_id, "CPO_WORKTREE": str(req.worktree)})

    def stdout(line: str) -> None:
        for event in parser.feed(line):
            if event.log and p.task.verbose:
                on_log(p.task_id, event.log)

    def stderr(line: str) -> None:
        if p.task.verbose:
            on_log(p.task_id, line)

    proc = run_streaming(
        backend.argv(req),
        cwd=req.worktree,
        env=backend.env(req, base),
        stdin_text=req.prompt,
        on_stdout=stdout,
        on_stderr=stderr,
        timeout=p.timeout,
        idle_timeout=p.idle_timeout,
        registry=registry,
    )
    return proc, parser.finish(proc.returncode, proc.stderr_tail)


def _judge(proc: ProcResult, outcome: AgentOutcome, p: Prepared) -> tuple[bool, str | None]:
    if proc.timed_out:
        return False, f"timeout: stopped after {p.timeout:g}s"
    if proc.idle_timed_out:
        return False, f"timeout: no output for {p.idle_timeout:g}s"
    if proc.interrupted:
        return False, "interrupted"
    if outcome.is_error:
        cls = f"{outcome.error_class}: " if outcome.error_class else ""
        return False, f"{cls}{outcome.error_text or 'agent error'}"
    if proc.returncode != 0:
        return False, f"exit code {proc.returncode}"
    return True, None


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
    said: set[str] = set()
    for p in tasks:
        for note in p.notes:
            if note not in said:
                said.add(note)
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
