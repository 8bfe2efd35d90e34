"""The worker's clone readied and its agent run as `cpo run` does in a worktree here.

Before the agent: a block of ports taken on the worker's own machine (the coordinator's
ports mean nothing here; cpo.run.ports), then the launch's setup commands in the clone
(cpo.run.ready.run_setup: the same log lines and records). The agent's run then gets
the launch's nudges (cpo.run.nudge.nudged: its session resumed when it stops early).
What was done travels back in `Exited` (`setup`, `ports`, `nudges`), which the
coordinator puts in the attempt's record (cpo.run.remote).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from cpo.agents.base import AgentOutcome, AgentRequest
from cpo.executors.base import EventSink
from cpo.executors.spec import LogLine, TaskLaunch
from cpo.git import Git, agent_git_env
from cpo.proc import ProcessRegistry
from cpo.run.attempt import AttemptResult, run_attempt_agent
from cpo.run.nudge import nudged
from cpo.run.ports import PortBlock, PortRange
from cpo.run.ready import run_setup
from cpo.run.recovery import Nudge
from cpo.run.report import SetupStep
from cpo.secrets import Masker


@dataclass
class Readied:
    """What readying the clone and running the agent did, for `Exited`."""

    setup: list[SetupStep] = field(default_factory=list)
    block: PortBlock | None = None
    nudges: list[Nudge] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """`Exited`'s fields for it."""
        block = self.block
        return {
            "setup": tuple(s.model_dump() for s in self.setup),
            "ports": (block.base, block.base + block.count - 1) if block else (),
            "nudges": tuple(n.model_dump() for n in self.nudges),
        }

    def release(self) -> None:
        if self.block is not None:
            self.block.release()


def take_ports(launch: TaskLaunch, readied: Readied, note: Callable[[str], None]) -> dict[str, str]:
    """A block of this machine's ports for the attempt, held in `readied`; its variables."""
    if launch.ports is None or not launch.ports.count:
        return {}
    wanted = PortRange(launch.ports.first, launch.ports.last, launch.ports.count)
    block = readied.block = wanted.acquire()
    if block is None:
        note("[cpo] warning: no free block of ports: CPO_PORT is not set")
        return {}
    note(f"[cpo] ports {block.base}-{block.base + block.count - 1} (CPO_PORT={block.base})")
    return block.env()


def setup_clone(
    launch: TaskLaunch,
    req: AgentRequest,
    env: dict[str, str],
    registry: ProcessRegistry,
    readied: Readied,
    note: Callable[[str], None],
) -> AttemptResult | None:
    """Run the launch's setup commands in the clone; the attempt's result if one failed."""
    if not launch.setup:
        return None
    error = run_setup(
        launch.setup,
        cwd=req.worktree,
        env=agent_git_env(env),
        timeout=launch.timeout,
        registry=registry,
        write=note,
        steps=readied.setup,
    )
    if error is None:
        return None
    return AttemptResult(False, "setup_failed", f"{error}; see the task log", AgentOutcome(), None)


@dataclass(frozen=True)
class WorkerAgent:
    """The launch's agent in the clone, resumed up to `launch.nudges` times."""

    launch: TaskLaunch
    git: Git
    env: dict[str, str]
    registry: ProcessRegistry
    masker: Masker
    on_event: EventSink

    def run(self, req: AgentRequest, readied: Readied) -> AttemptResult:
        launch = self.launch

        def once(req: AgentRequest) -> AttemptResult:
            return run_attempt_agent(
                launch.agent.backend,
                req,
                base_env=self.env,
                timeout=launch.timeout,
                idle_timeout=launch.idle_timeout,
                registry=self.registry,
                masker=self.masker,
                on_event=self.on_event,
            )

        def again(session: str, message: str) -> AttemptResult:
            where = f"task {launch.task_id} attempt {launch.attempt}"
            self.on_event(LogLine(text=f"=== {where}: resuming session {session} ===", cpo=True))
            return once(replace(req, resume=session, prompt=message))

        return nudged(
            once(req),
            again,
            nudges=launch.nudges,
            backend=launch.agent.backend,
            idle=launch.idle_timeout,
            stopped=self.registry.cancelled.is_set,
            uncommitted=lambda: bool(self.git.dirty_paths(req.worktree)),
            began=readied.nudges.append,
            ended=lambda _nudge, settle: settle(),
        )
