"""The settings of one `cpo run`: options from the command line, the loaded plan, the
repository, and each task's effective settings by precedence
(flag > task > manifest > repo config > user config > default).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from cpo.agents import backend_names
from cpo.agents.modes import APPROVAL_MODES, SANDBOX_MODES
from cpo.config import load_settings
from cpo.errors import GitError, PreflightError, UsageError
from cpo.executors.base import LOCAL, Executor, load_executor
from cpo.git import Git, find_repo
from cpo.plan.load import load_plan
from cpo.plan.model import OnConflict, Plan, TaskSpec
from cpo.planfile.paths import is_plan_file
from cpo.run.agentrun import AgentChoices, TaskSettings, resolve_settings
from cpo.run.layout import (
    Layout,
    Recorded,
    default_workspace_root,
    layout_conflicts,
    new_layout,
    recorded_layout,
    with_branches,
)
from cpo.run.policy import Policy, resolve_policy
from cpo.run.ports import PortRange
from cpo.run.priority import Mode
from cpo.run.report import Report, load_report
from cpo.settings import Settings
from cpo.suggest import did_you_mean


@dataclass(frozen=True)
class RunOptions:
    max_concurrent: int | None = None
    wave: int | None = None
    skip: tuple[str, ...] = ()
    retry_failed: bool = False
    resume: bool = False
    dry_run: bool = False
    fail_fast: bool | None = None
    timeout: float | None = None
    idle_timeout: float | None = None
    schedule: Mode = "waves"
    # Whether --schedule was given: a continued run keeps its recorded schedule unless told
    # otherwise, and then the two must agree (cpo.run.layout).
    schedule_given: bool = False
    no_integration: bool = False
    backend: str | None = None
    model: str | None = None
    permission_mode: str | None = None
    max_turns: int | None = None
    agent_command: str | None = None
    approval_mode: str | None = None
    sandbox_mode: str | None = None
    allow_dirty: bool = False
    retries: int = 2
    workspace_root: Path | None = None
    grace: float = 5.0
    backoff_base: float = 5.0
    # Where agents run (cpo.executors): `local`, in worktrees here; any other through
    # the git `remote` (a remote's name or a URL the executor's workers can reach).
    executor: str = "local"
    remote: str = "origin"
    ray_address: str | None = None  # --ray-address; else RAY_ADDRESS, else the config's
    # None: the manifest's or the settings' value (cpo.run.policy).
    repair: int | None = None
    nudges: int | None = None
    strict_scope: bool | None = None
    on_conflict: OnConflict | None = None
    # A plan file's validation command (`--validate`), over its frontmatter's.
    validate: str | None = None

    @property
    def continuing(self) -> bool:
        """Whether this run carries on an earlier one (and keeps its layout)."""
        return self.resume or self.retry_failed or self.wave is not None


@dataclass
class RunContext:
    plan: Plan
    opts: RunOptions
    settings: Settings
    git: Git
    repo: Path
    workspace_root: Path
    max_concurrent: int
    base_branch: str
    base_commit: str
    fail_fast: bool
    layout: Layout
    # The report of the run being continued (--resume, --retry-failed, --wave), if any.
    recorded: Report | None = None
    # Where agents run; None: the local executor (worktrees of this machine).
    executor: Executor | None = None
    policy: Policy = field(default_factory=Policy)

    @property
    def integration_worktree(self) -> Path:
        return self.layout.integration_worktree

    def worktree(self, task_id: str) -> Path:
        return self.layout.worktrees[task_id]

    @property
    def ports(self) -> PortRange:
        """Where each running task's block of ports comes from (config `ports`)."""
        return PortRange(*self.settings.ports)


def executor_options(opts: RunOptions, settings: Settings) -> dict[str, object]:
    """An executor's settings from the config (`executors.<name>`), the flags on top."""
    found = settings.executor(opts.executor)
    if opts.executor == "ray":
        found["address"] = opts.ray_address or os.environ.get("RAY_ADDRESS") or found["address"]
    return found


def prepare(parallel_dir: Path, opts: RunOptions) -> RunContext:
    """Load the plan and check everything that would make the run fail before it starts."""
    parallel_dir = parallel_dir.resolve()
    if is_plan_file(parallel_dir):
        from cpo.planfile.load import load_plan_file  # only then: the plan-file parser

        plan = load_plan_file(parallel_dir, opts.validate)
    else:
        plan = load_plan(parallel_dir)
    repo = find_repo(parallel_dir)
    settings = load_settings(repo)
    git = Git(repo)
    known = backend_names()
    for name in filter(None, [opts.backend, *(t.backend for t in plan.tasks.values())]):
        if name not in known:
            raise UsageError(f"unknown backend {name!r}", hint=f"choose one of: {', '.join(known)}")
    for flag, value, allowed in (
        ("--approval-mode", opts.approval_mode, APPROVAL_MODES),
        ("--sandbox-mode", opts.sandbox_mode, SANDBOX_MODES),
    ):
        if value is not None and value not in allowed:
            raise UsageError(f"{flag} {value}: choose one of {', '.join(allowed)}")
    executor = None
    if opts.executor != LOCAL:
        executor = load_executor(opts.executor, executor_options(opts, settings))
    for name in opts.skip:
        if name not in plan.tasks:
            raise UsageError(
                f"--skip: no task {name!r} in {parallel_dir.name}" + did_you_mean(name, plan.tasks)
            )
    if opts.wave is not None and opts.wave not in {w.number for w in plan.waves}:
        raise UsageError(
            f"--wave {opts.wave}: the plan has waves {', '.join(str(w.number) for w in plan.waves)}"
        )
    try:  # one git process for both when HEAD has a commit, as it nearly always has
        head: str | None
        head, branch = git.worktree_head(repo)
    except GitError:  # an unborn branch, or no HEAD at all: say which
        head, branch = None, git.current_branch()
    if branch is None:
        raise PreflightError(
            "HEAD is detached: cpo needs a base branch to build on",
            hint="check out the branch the feature should start from (git switch main)",
        )
    base_commit = head
    if base_commit is None:
        raise PreflightError(
            f"branch {branch} has no commits yet", hint="make a first commit, then run again"
        )
    recorded = _recorded_run(plan, opts)
    if recorded is not None:
        opts = _recorded_options(plan, opts, recorded, repo)
    workspace_root = _workspace_root(settings, opts, repo)
    layout = new_layout(plan, workspace_root)
    if recorded is not None:
        layout = recorded_layout(plan, recorded, layout)
        plan = with_branches(plan, layout)
    concurrency, _ = settings.resolve(
        "parallel.max_workers", flag=opts.max_concurrent, manifest=plan.max_parallel
    )
    fail_fast, _ = settings.resolve("parallel.fail_fast", flag=opts.fail_fast)
    return RunContext(
        plan=plan,
        opts=opts,
        settings=settings,
        git=git,
        repo=repo,
        workspace_root=layout.workspace_root,
        max_concurrent=max(1, int(concurrency)),
        base_branch=branch,
        base_commit=base_commit,
        fail_fast=bool(fail_fast),
        layout=layout,
        recorded=recorded,
        executor=executor,
        policy=resolve_policy(
            settings,
            plan.run_keys,
            repair=opts.repair,
            nudges=opts.nudges,
            strict_scope=opts.strict_scope,
            on_conflict=opts.on_conflict,
        ),
    )


def _workspace_root(settings: Settings, opts: RunOptions, repo: Path) -> Path:
    """The flag, else the setting, relative to the repository; by default
    `../workspaces/<repo folder name>`."""
    value, source = settings.resolve("workspace_root", flag=opts.workspace_root)
    if source == "default":
        return default_workspace_root(repo)
    return (repo / Path(str(value))).resolve()


def _recorded_run(plan: Plan, opts: RunOptions) -> Report | None:
    """The report of the run this one continues, or None for a fresh run."""
    if not opts.continuing:
        return None
    report = load_report(plan.root)
    # A report of another spec id (the manifest's id was changed) names nothing of ours.
    return report if report is not None and report.spec_id == plan.spec_id else None


def _recorded_options(plan: Plan, opts: RunOptions, report: Report, repo: Path) -> RunOptions:
    """`opts` with the layout options of the run being continued; a flag that disagrees
    with them is refused (cpo.run.layout)."""
    recorded = Recorded.of(report)
    flag_root = (repo / opts.workspace_root).resolve() if opts.workspace_root else None
    problems = layout_conflicts(
        recorded,
        workspace_root=flag_root,
        schedule=opts.schedule if opts.schedule_given else None,
        no_integration=opts.no_integration,
        parallel_dir=plan.root,
    )
    if problems:
        raise PreflightError.of(problems)
    return replace(
        opts,
        workspace_root=recorded.workspace_root or flag_root,
        schedule="dag" if recorded.schedule == "dag" else "waves",
        no_integration=recorded.no_integration,
    )


def task_settings(ctx: RunContext, task: TaskSpec) -> TaskSettings:
    o = ctx.opts
    flags = AgentChoices(
        backend=o.backend,
        model=o.model,
        max_turns=o.max_turns,
        permission_mode=o.permission_mode,
        approval_mode=o.approval_mode,
        sandbox_mode=o.sandbox_mode,
        timeout=o.timeout,
        idle_timeout=o.idle_timeout,
        command=o.agent_command,
    )
    spec = AgentChoices(
        backend=task.backend,
        model=task.model,
        max_turns=task.max_turns,
        permission_mode=task.permission_mode,
        approval_mode=task.approval_mode,
        sandbox_mode=task.sandbox_mode,
        timeout=task.timeout,
        agent=task.agent,
    )
    resolved = resolve_settings(
        ctx.settings, flags, spec, retries=o.retries, backoff_base=o.backoff_base
    )
    return replace(resolved, nudges=ctx.policy.nudges)
