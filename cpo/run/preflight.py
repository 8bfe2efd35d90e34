"""Preflight: every reason a run cannot start, found before anything is changed.

The backend part (`backend_problems`, `unsupported_notes`) is shared with `cpo parallel`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping

from cpo.agents import get_backend
from cpo.agents.base import AgentRequest
from cpo.errors import UsageError
from cpo.run.agentrun import task_request
from cpo.run.nextstep import cpo_command
from cpo.run.options import RunContext, task_settings
from cpo.run.report import REPORT_FILE, Report

BackendRequest = tuple[str, AgentRequest]  # (backend name, request)


def backend_problems(requests: Iterable[BackendRequest], env: Mapping[str, str]) -> list[str]:
    """Ask each backend, once, about all of its requests: is its CLI there and able?"""
    by_backend: dict[str, list[AgentRequest]] = {}
    for name, req in requests:
        by_backend.setdefault(name, []).append(req)
    problems: list[str] = []
    for name, reqs in by_backend.items():
        try:
            backend = get_backend(name)
        except UsageError as exc:
            problems.append(f"{exc.message} ({exc.hint})")
            continue
        problems.extend(backend.preflight(reqs, env))
    return problems


def unsupported_notes(requests: Iterable[BackendRequest]) -> list[str]:
    """Options a backend's CLI cannot honour for some task, each said once, never dropped."""
    seen: dict[str, None] = {}
    for name, req in requests:
        seen.update(dict.fromkeys(get_backend(name).unsupported(req)))
    return list(seen)


def _requests(ctx: RunContext) -> Iterator[BackendRequest]:
    """Each task's backend name and agent request (without its prompt)."""
    for task in ctx.plan.ordered_tasks():
        s = task_settings(ctx, task)
        yield s.backend, task_request(task, s, ctx.workspace_root / task.id, ctx.plan.root, "")


def unsupported_options(ctx: RunContext) -> list[str]:
    return unsupported_notes(_requests(ctx))


def preflight(ctx: RunContext, report: Report | None) -> list[str]:
    """Every reason the run cannot start, one line each with the fix."""
    problems: list[str] = []
    git, plan = ctx.git, ctx.plan
    if not ctx.opts.allow_dirty:
        dirty = git.dirty_paths(exclude=[plan.root])
        if dirty:
            shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
            problems.append(
                f"the working tree has uncommitted changes ({shown}): commit or stash them, "
                "or pass --allow-dirty (agents start from the last commit either way)"
            )
    identity = git.identity_problem()
    if identity:
        problems.append(identity)
    problems.extend(backend_problems(_requests(ctx), os.environ))
    try:
        ctx.workspace_root.mkdir(parents=True, exist_ok=True)
        probe = ctx.workspace_root / f".cpo-write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        problems.append(
            f"workspace root {ctx.workspace_root} is not writable ({exc.strerror}): "
            "choose another with --workspace-root or `workspace_root` in .cpo/config.yaml"
        )
    leftovers = _foreign_leftovers(ctx, report)
    if leftovers and report is None and (ctx.opts.resume or ctx.opts.wave is not None):
        leftovers = [_lost_report(ctx)]
    problems.extend(leftovers)
    return problems


def _lost_report(ctx: RunContext) -> str:
    """Continuing a run whose report.json is gone: nothing says what it finished."""
    root = ctx.plan.root
    return (
        f"{root / REPORT_FILE} is missing, so what the earlier run finished is unknown, and "
        "its branches and worktrees are in the way: remove them with "
        f"`{cpo_command('clean', root)}` (it finds them from the plan; --force also drops "
        f"unmerged work), then start again: {cpo_command('run', root)}"
    )


def _foreign_leftovers(ctx: RunContext, report: Report | None) -> list[str]:
    """Branches and folders in our way that this run does not own."""
    problems = []
    owned = set()
    if report is not None and (ctx.opts.resume or ctx.opts.retry_failed or ctx.opts.wave):
        owned = {t.id for t in report.tasks.values() if t.branch}
    registered = ctx.git.worktrees()
    branches = ctx.git.local_branches()
    for task in ctx.plan.ordered_tasks():
        if task.id in owned:
            continue
        path = (ctx.workspace_root / task.id).resolve()
        if task.branch in branches:
            problems.append(
                f"branch {task.branch} already exists: continue the earlier run with --resume, "
                f"or remove it (`cpo clean {ctx.plan.root}`, or git branch -D if it is not ours)"
            )
        elif path.exists() and (path in registered or any(path.iterdir())):
            problems.append(
                f"folder {path} already exists: remove it or pick another --workspace-root"
            )
    integ = ctx.plan.integration_branch
    continuing = ctx.opts.resume or ctx.opts.retry_failed or ctx.opts.wave is not None
    if integ in branches and not continuing and not ctx.opts.no_integration:
        problems.append(
            f"branch {integ} already exists from an earlier run: continue it with --resume, "
            f"or remove it with `cpo clean {ctx.plan.root}`"
        )
    return problems
