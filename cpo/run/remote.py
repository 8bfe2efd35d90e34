"""Attempts run by an executor other than local, through a git remote.

Before an attempt the coordinator puts the commit the task starts from on the remote, on
an attempt-scoped branch (`cpo-worker/<spec>/<task>/attempt-<n>`: a retry or a duplicate
worker never overwrites another attempt's work). The executor runs the worker
(`cpo worker run-task`), whose events go into the task's logs as a local agent's would
(cpo.run.tasklog). After it, the branch is fetched and the local task branch moved to its
head; the task runner records the `Exited` and the engine merges exactly as for a local
task. A Ctrl-C, fail-fast or auth stop (the registry's cancel) cancels running attempts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cpo.errors import CpoError
from cpo.executors.base import Executor
from cpo.executors.spec import (
    AgentLaunch,
    AgentLine,
    AnyEvent,
    Exited,
    Handle,
    LogLine,
    PortsLaunch,
    Started,
    TaskLaunch,
)
from cpo.git import Git
from cpo.plan.model import Plan, TaskSpec
from cpo.plan.prompts import sparse_note
from cpo.proc import ProcessRegistry
from cpo.run.agentrun import TaskSettings
from cpo.run.attempt import Ran
from cpo.run.changes import shown
from cpo.run.options import RunContext
from cpo.run.ready import INCLUDE_FILE, included_files, shared_dirs, spec_setup
from cpo.run.recovery import Nudge
from cpo.run.report import Attempt, SetupStep
from cpo.run.reportwriter import ReportWriter
from cpo.run.tasklog import TaskLog
from cpo.run.taskrun import RunnerCallbacks
from cpo.run.worktrees import inside_repo
from cpo.secrets import Masker

FETCHED = "refs/cpo-worker"  # where fetched attempt branches are kept in the repository
# TaskSettings' fields that AgentLaunch has under the same name.
_SAME_NAMED: tuple[str, ...] = (
    "model",
    "max_turns",
    "permission_mode",
    "approval_mode",
    "sandbox_mode",
    "agent",
)
_SAME_NAMED += ("extra_args",)


def remote_attempts(
    executor: Executor,
    ctx: RunContext,
    writer: ReportWriter,
    registry: ProcessRegistry,
    run: RunnerCallbacks,
    masker: Masker,
) -> RemoteAttempts:
    """The attempts of a run whose executor is not local (`cpo run --executor`)."""
    return RemoteAttempts(
        executor=executor,
        url=remote_url(ctx.git, ctx.opts.remote),
        git=ctx.git,
        plan=ctx.plan,
        writer=writer,
        logs_dir=ctx.plan.root / "logs",
        registry=registry,
        start_point=run.start_point,
        on_action=run.task_action,
        masker=masker,
        integration=not ctx.opts.no_integration,
        setup=spec_setup(ctx.plan, ctx.settings),
        sparse_always=inside_repo(ctx.plan.root, ctx.repo),
        ports=PortsLaunch(**asdict(ctx.ports)),
        nudges=ctx.policy.nudges,
    )


def remote_notes(ctx: RunContext) -> list[str]:
    """What an executor other than local cannot do as the local one does: copy untracked
    files of this checkout into the agents' folders (workers clone from the remote)."""
    if ctx.executor is None:
        return []
    files = included_files(ctx.git, ctx.repo, ctx.plan, ctx.settings)
    shared = shared_dirs(ctx.plan, ctx.settings)
    if not files and not shared:
        return []
    what = [*files, *(f"{d}/" for d in shared)]
    return [
        f"--executor {ctx.opts.executor}: {shown(what)} (named by {INCLUDE_FILE}, "
        "worktree.include or worktree.share) are not in the workers' clones, which come from "
        "the git remote: have a setup command make them there, or commit them"
    ]


def remote_problems(ctx: RunContext) -> list[str]:
    """Preflight: an executor other than local needs a git remote this machine reaches."""
    if ctx.executor is None:
        return []
    url = remote_url(ctx.git, ctx.opts.remote)
    if ctx.git.ok("ls-remote", "--heads", url):
        return []
    return [
        f"--remote {ctx.opts.remote}: no git remote of that name, and git cannot reach it as "
        f"a URL: name a remote of this repository (git remote -v) or give a URL that both "
        f"this machine and the {ctx.opts.executor} workers reach"
    ]


def remote_url(git: Git, remote: str) -> str:
    """The URL of the git remote called `remote`, or `remote` itself: a URL, or a path
    (made absolute: a worker runs elsewhere). A remote's relative path is the
    repository's, a path given is the current folder's."""
    if git.ok("remote", "get-url", remote):
        return _as_url(git.run("remote", "get-url", remote), git.root)
    return _as_url(remote, Path.cwd())


def _as_url(value: str, base: Path) -> str:
    host = value.split("/", 1)[0]
    if "://" in value or ":" in host:  # a URL, or scp-like `host:path`
        return value
    return (base / value).resolve().as_uri()


def attempt_branch(spec_id: str, task_id: str, attempt_no: int) -> str:
    return f"cpo-worker/{spec_id}/{task_id}/attempt-{attempt_no}"


def launch_env(plan: Plan, task: TaskSpec, attempt_no: int, integration: bool) -> dict[str, str]:
    """cpo's task variables and the spec's and task's `env:`, as written (the worker
    expands `$NAME` from its own environment: no value of the coordinator's travels)."""
    env = dict(plan.env)
    env.update(task.env)
    env.update(CPO_TASK_ID=task.id, CPO_WAVE=str(task.wave), CPO_ATTEMPT=str(attempt_no))
    env["CPO_SPEC_ID"] = plan.spec_id
    if integration:
        env["CPO_INTEGRATION_BRANCH"] = plan.integration_branch
    return env


@dataclass
class RemoteAttempts:
    """The task runner's `Attempts` for an executor working through a git remote."""

    executor: Executor
    url: str
    git: Git
    plan: Plan
    writer: ReportWriter
    logs_dir: Path
    registry: ProcessRegistry
    start_point: Callable[[TaskSpec], str]
    on_action: Callable[[TaskSpec, str], None]
    masker: Masker
    integration: bool = True
    env_names: tuple[str, ...] = ()
    resources: dict[str, float] = field(default_factory=dict)
    setup: tuple[str, ...] = ()  # the spec's setup commands (a task's own follow them)
    sparse_always: tuple[str, ...] = ()  # folders every sparse checkout holds (the plan's)
    ports: PortsLaunch | None = None  # ports per task, taken on the worker's machine
    nudges: int = 0  # the run's default (a task's settings say their own)
    _running: dict[str, Handle] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.registry.when_cancelled(self._cancel_all)

    @property
    def name(self) -> str:
        return self.executor.name

    def prepare(self, task: TaskSpec, attempt_no: int) -> str:
        """The start commit, put on the remote as the attempt's branch."""
        rec = self.writer.report.tasks[task.id]
        start = (rec.start_point if rec.attempts else None) or self.start_point(task)
        branch = attempt_branch(self.plan.spec_id, task.id, attempt_no)
        self.git.run("push", "--quiet", "--force", self.url, f"{start}:refs/heads/{branch}")
        return start

    def run(self, task: TaskSpec, settings: TaskSettings, start: str, attempt_no: int) -> Ran:
        launch = self._launch(task, settings, start, attempt_no)
        handle = self.executor.handle(launch)
        with self.writer.update_task(task.id) as rec:
            rec.attempts[-1].handle = handle.model_dump()
        exited = self._follow(task, settings, attempt_no, handle, launch)
        assert exited is not None
        self._record(task, attempt_no, exited)
        return Ran(exited.ok, exited.reason, lambda: self._fetched(task, launch.branch, exited))

    def adopt(self, task: TaskSpec, settings: TaskSettings, attempt: Attempt) -> Ran | None:
        handle = Handle.model_validate(attempt.handle)
        if handle.executor != self.executor.name:
            return None
        exited = self._follow(task, settings, attempt.number, handle, None)
        if exited is None:
            return None
        self._record(task, attempt.number, exited)
        branch = attempt_branch(self.plan.spec_id, task.id, attempt.number)
        return Ran(exited.ok, exited.reason, lambda: self._fetched(task, branch, exited))

    def _record(self, task: TaskSpec, attempt_no: int, exited: Exited) -> None:
        """What the worker's readying and nudges did, into the attempt's record (the
        local executor records the same as it happens: cpo.run.hooks, cpo.run.nudge)."""
        with self.writer.update_task(task.id) as rec:
            for attempt in rec.attempts:
                if attempt.number == attempt_no:
                    attempt.setup = [SetupStep.model_validate(s) for s in exited.setup]
                    attempt.ports = list(exited.ports)
                    attempt.nudges = [Nudge.model_validate(n) for n in exited.nudges]

    def _follow(
        self,
        task: TaskSpec,
        settings: TaskSettings,
        attempt_no: int,
        handle: Handle,
        launch: TaskLaunch | None,
    ) -> Exited | None:
        """Run `launch` (None: adopt `handle`), its events into the task's logs."""
        with TaskLog(
            self.logs_dir, task, settings.log_limit, lambda a: self.on_action(task, a)
        ) as logs:
            how = "" if launch else " (re-attached after a restart)"
            logs.header(task, f"{self.executor.name} {handle.id}{how}", attempt_no, settings)

            def on_event(event: AnyEvent) -> None:
                event = _masked(event, self.masker)  # the worker masked what it knew
                if isinstance(event, Started):
                    where = f"{event.host} (pid {event.pid}) in {event.workdir}"
                    logs.log.note(f"[cpo] worker started on {where}")
                logs.event(event)

            with self._lock:
                self._running[handle.id] = handle
            try:
                if self.registry.cancelled.is_set():
                    return Exited(ok=False, reason="interrupted", error="stopped by cpo")
                if launch is None:
                    return self.executor.adopt(handle, on_event)
                return self.executor.run(launch, on_event)
            finally:
                with self._lock:
                    self._running.pop(handle.id, None)

    def _launch(self, task: TaskSpec, s: TaskSettings, start: str, attempt_no: int) -> TaskLaunch:
        return TaskLaunch(
            spec_id=self.plan.spec_id,
            task_id=task.id,
            wave=task.wave,
            attempt=attempt_no,
            remote=self.url,
            branch=attempt_branch(self.plan.spec_id, task.id, attempt_no),
            start_commit=start,
            agent=AgentLaunch(
                backend=s.backend,
                command=s.agent_command,
                **{name: getattr(s, name) for name in _SAME_NAMED},
            ),
            prompt=task.prompt if task.sparse is None else task.prompt + sparse_note(task.sparse),
            prompt_source=task.prompt_source,
            env=launch_env(self.plan, task, attempt_no, self.integration),
            env_names=self.env_names,
            timeout=s.timeout,
            idle_timeout=s.idle_timeout,
            grace=self.registry.grace,
            resources=self.resources,
            setup=(*self.setup, *task.setup),
            sparse=None if task.sparse is None else (*self.sparse_always, *task.sparse),
            ports=self.ports,
            nudges=s.nudges,
        )

    def _fetched(self, task: TaskSpec, branch: str, exited: Exited) -> Exited:
        """The attempt's branch fetched and the task branch moved to its head; failed
        when the remote does not hold what the worker said it pushed."""
        if exited.head is None:
            return exited  # it never got a checkout: nothing to fetch
        kept = f"{FETCHED}/{branch}"
        # With it, the entries its agent left in the clone's stash (cpo.worker.stashed), so
        # the task's warning can say `git stash apply <commit>` here.
        stashed = f"+refs/heads/{branch}-stash-*:{kept}-stash-*"
        try:
            self.git.run(
                "fetch", "--quiet", "--no-tags", self.url, f"+refs/heads/{branch}:{kept}", stashed
            )
        except CpoError as exc:
            return _failed(exited, "fetch_failed", exc.message)
        head = self.git.rev(kept)
        if head != exited.head:
            return _failed(
                exited,
                "fetch_failed",
                f"{branch} on {self.url} is at {(head or 'nothing')[:12]}, not at the "
                f"worker's {exited.head[:12]}",
            )
        old = self.git.rev(f"refs/heads/{task.branch}") or ""
        if old != head:
            self.git.update_branch(task.branch, head, old, f"cpo: {branch}")
        return exited

    def _cancel_all(self) -> None:
        with self._lock:
            handles = list(self._running.values())
        for handle in handles:
            threading.Thread(target=self.executor.cancel, args=(handle,), daemon=True).start()


def _masked(event: AnyEvent, masker: Masker) -> AnyEvent:
    if isinstance(event, LogLine):
        return event.model_copy(update={"text": masker.mask(event.text)})
    if isinstance(event, AgentLine):
        return event.model_copy(
            update={
                "raw": masker.mask(event.raw),
                "logs": tuple(map(masker.mask, event.logs)),
                "actions": tuple(map(masker.mask, event.actions)),
            }
        )
    return event


def _failed(exited: Exited, reason: str, error: str) -> Exited:
    if not exited.ok:  # an earlier failure stays the reason
        return exited.model_copy(update={"warnings": (*exited.warnings, error)})
    return exited.model_copy(update={"ok": False, "reason": reason, "error": error})
