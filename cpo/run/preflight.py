"""Preflight: every reason a run cannot start, found before anything is changed.

The backend part (`backend_problems`, `unsupported_notes`) is shared with `cpo parallel`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping

from cpo.agents import get_backend
from cpo.agents.base import AgentRequest
from cpo.errors import UsageError
from cpo.gitenv import identity_problem
from cpo.plan.names import ref_clash
from cpo.run.agentrun import task_request
from cpo.run.changes import (
    MANIFEST,
    PROBE_PREFIX,
    shown,
    uncommitted_lines,
    uncommitted_plan_files,
    user_changes,
)
from cpo.run.nextstep import cpo_command
from cpo.run.options import RunContext, task_settings
from cpo.run.report import REPORT_FILE

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
        yield s.backend, task_request(task, s, ctx.worktree(task.id), ctx.plan.root, "")


def unsupported_options(ctx: RunContext) -> list[str]:
    return unsupported_notes(_requests(ctx))


def preflight(ctx: RunContext) -> list[str]:
    """Every reason the run cannot start, one line each with the fix."""
    problems = _local_changes(ctx) if not ctx.opts.allow_dirty else []
    identity = identity_problem(ctx.git)
    if identity:
        problems.append(identity)
    if ctx.executor is not None and ctx.executor.name == "ray":
        # The agents run on the cluster: their CLIs are checked there, not here.
        from cpo.run.raycheck import ray_problems

        problems.extend(ray_problems(ctx.executor, _requests(ctx)))
    else:
        problems.extend(backend_problems(_requests(ctx), os.environ))
    problems.extend(_workspace_root_problems(ctx))
    leftovers = _foreign_leftovers(ctx)
    if leftovers and ctx.recorded is None and (ctx.opts.resume or ctx.opts.wave is not None):
        leftovers = [_lost_report(ctx)]
    problems.extend(leftovers)
    problems.extend(name_clashes(ctx))
    if ctx.executor is not None:
        from cpo.run.remote import remote_problems  # only then: it imports the task runner

        problems.extend(remote_problems(ctx))
    return problems


def _workspace_root_problems(ctx: RunContext) -> list[str]:
    """Where worktrees go must be writable and apart from git's and the user's own files.

    Nothing is created here: a refused run leaves no folder behind. The write probe goes
    into the nearest folder that exists (the root itself, or the parent it would be made
    in) and is removed at once.
    """
    root, repo = ctx.workspace_root.resolve(), ctx.git.root.resolve()
    fix = "choose another with --workspace-root or `workspace_root` in .cpo/config.yaml"
    git_dir = ctx.git.common_dir().resolve()
    if root == repo:
        return [f"workspace root {root} is the repository itself: {fix} (default ../workspaces)"]
    if root == git_dir or git_dir in root.parents:
        return [f"workspace root {root} is inside git's own folder {git_dir}: {fix}"]
    if root == ctx.plan.root.resolve() or ctx.plan.root.resolve() in root.parents:
        return [f"workspace root {root} is inside the parallel directory: {fix}"]
    existing = next((p for p in (root, *root.parents) if p.exists()), None)
    if existing is None or not existing.is_dir():
        return [f"workspace root {root} cannot be made ({existing} is not a folder): {fix}"]
    probe = existing / f"{PROBE_PREFIX}{os.getpid()}"
    try:
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        return [f"workspace root {root} is not writable ({exc.strerror}): {fix}"]
    return []


def preflight_notes(ctx: RunContext) -> list[str]:
    """What the run should say but not stop for: options a backend cannot honour, the
    plan's own files left uncommitted (cpo reads them as they are), with --allow-dirty
    the files agents would miss, and the included files remote workers go without."""
    missed, read = _uncommitted_plan(ctx)
    notes = [*unsupported_options(ctx), *(missed if ctx.opts.allow_dirty else []), *read]
    if ctx.executor is not None:
        from cpo.run.remote import remote_notes

        notes.extend(remote_notes(ctx))
    return notes


def _local_changes(ctx: RunContext) -> list[str]:
    """The user's uncommitted changes (cpo's own outputs never count), and the parallel
    directory's files that agents would miss."""
    problems = []
    inside = ctx.plan.root
    dirty = [
        p for p in user_changes(ctx.git) if not (ctx.repo / p).resolve().is_relative_to(inside)
    ]
    if dirty:
        problems.append(
            f"the working tree has uncommitted changes ({shown(dirty)}): commit or stash them, "
            "or pass --allow-dirty (agents start from the last commit either way)"
        )
    missed, _ = _uncommitted_plan(ctx)
    problems.extend(f"{line}; or pass --allow-dirty to run without them" for line in missed)
    return problems


def _uncommitted_plan(ctx: RunContext) -> tuple[list[str], list[str]]:
    files = uncommitted_plan_files(ctx.git, ctx.plan.root)
    return uncommitted_lines(ctx.plan, ctx.repo, files) if files else ([], [])


def _lost_report(ctx: RunContext) -> str:
    """Continuing a run whose report.json is gone: nothing says what it finished."""
    root = ctx.plan.root
    return (
        f"{root / REPORT_FILE} is missing, so what the earlier run finished is unknown, and "
        "its branches and worktrees are in the way: remove them with "
        f"`{cpo_command('clean', root)}` (it finds them from the plan; --force also drops "
        f"unmerged work), then start again: {cpo_command('run', root)}"
    )


def _foreign_leftovers(ctx: RunContext) -> list[str]:
    """Branches and folders in our way that this run does not own."""
    problems = []
    owned = set()
    if ctx.recorded is not None:
        owned = {t.id for t in ctx.recorded.tasks.values() if t.branch}
    registered = ctx.git.worktrees()
    branches = ctx.git.local_branches()
    plain = ctx.plan.branch_names == "plain"
    for task in ctx.plan.ordered_tasks():
        if task.id in owned:
            continue
        path = ctx.worktree(task.id).resolve()
        if task.branch in branches:
            problems.append(
                f"branch {task.branch} already exists: continue the earlier run with --resume, "
                f"or remove it (`cpo clean {ctx.plan.root}`, or git branch -D if it is not ours)"
                + (
                    f'; with "branch_names": "plain" in {MANIFEST} another spec\'s task of the '
                    "same id uses this name too: remove that key so branches carry the spec id"
                    if plain
                    else ""
                )
            )
        elif path.exists() and (path in registered or any(path.iterdir())):
            problems.append(
                f"folder {path} already exists: remove it or pick another --workspace-root"
            )
    integ = ctx.plan.integration_branch
    if integ in branches and not ctx.opts.continuing and not ctx.opts.no_integration:
        problems.append(
            f"branch {integ} already exists from an earlier run: continue it with --resume, "
            f"or remove it with `cpo clean {ctx.plan.root}`"
        )
    return problems


def name_clashes(ctx: RunContext) -> list[str]:
    """Names git or the file system cannot give this run: a branch named like a folder of
    ours (`feature/TS-1` blocks `feature/TS-1/task-001`), a task named like the integration
    worktree's folder."""
    problems = []
    branches = ctx.git.local_branches()
    wanted = [t.branch for t in ctx.plan.ordered_tasks()]
    if not ctx.opts.no_integration:
        wanted.append(ctx.plan.integration_branch)
    blocked: dict[str, list[str]] = {}
    for name in wanted:
        clash = ref_clash(name, branches)
        if clash is not None:
            blocked.setdefault(clash, []).append(name)
    for clash, names in blocked.items():
        problems.append(
            f"branch {clash} exists, so git cannot create {shown(names, 2)} (a branch name "
            f"cannot also be a folder of branches): rename it (git branch -m {clash} "
            "<new-name>) or delete it"
        )
    if not ctx.opts.no_integration:
        integ = ctx.integration_worktree.resolve()
        for tid in ctx.plan.tasks:
            if ctx.worktree(tid).resolve() == integ:
                problems.append(
                    f"task {tid}: its worktree would be the integration worktree {integ}: "
                    "rename the task"
                )
    return problems
