"""Preflight: every reason a run cannot start, found before anything is changed."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator

from cpo.agents import get_backend
from cpo.agents.base import AgentRequest
from cpo.errors import UsageError
from cpo.run.agentrun import agent_request
from cpo.run.options import RunContext, task_settings
from cpo.run.report import Report


def _requests(ctx: RunContext) -> Iterator[tuple[AgentRequest, str]]:
    """Each task's agent request (without its prompt) and backend name."""
    for task in ctx.plan.ordered_tasks():
        s = task_settings(ctx, task)
        yield agent_request(task, s, ctx.workspace_root / task.id, ctx.plan.root, ""), s.backend


def unsupported_options(ctx: RunContext) -> list[str]:
    """Options a backend's CLI cannot honour for some task: said, never silently dropped."""
    seen: list[str] = []
    for req, name in _requests(ctx):
        check = getattr(importlib.import_module(f"cpo.agents.{name}"), "unsupported", None)
        for line in check(req) if callable(check) else []:
            if f"{name}: {line}" not in seen:
                seen.append(f"{name}: {line}")
    return seen


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
    by_backend: dict[str, list[AgentRequest]] = {}
    for req, name in _requests(ctx):
        by_backend.setdefault(name, []).append(req)
    for name, reqs in by_backend.items():
        try:
            backend = get_backend(name)
        except UsageError as exc:
            problems.append(f"{exc.message} ({exc.hint})")
            continue
        problems.extend(backend.preflight(reqs, os.environ))
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
    problems.extend(_foreign_leftovers(ctx, report))
    return problems


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
