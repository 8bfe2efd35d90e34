"""A task's two logs, written from executor events: `logs/<id>.log` (readable) and
`logs/<id>.jsonl` (the agent's raw output), each capped (setting logs.max_size).

The same events come from an agent run here (`AgentRun`) and from a worker elsewhere
(cpo.run.remote), so both logs read the same whichever executor ran the task.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

from cpo.executors.spec import AgentLine, AnyEvent, LogLine
from cpo.logfile import CappedLog
from cpo.plan.model import TaskSpec
from cpo.plan.prompts import sparse_note
from cpo.proc import ProcessRegistry
from cpo.run.agentrun import TaskSettings, task_request
from cpo.run.attempt import AttemptResult, run_attempt_agent
from cpo.run.protocol import COMPLETION_PROTOCOL
from cpo.run.report import now_iso
from cpo.secrets import Masker


class TaskLog:
    """The task's logs while one attempt runs; `event` writes one event into them."""

    def __init__(
        self, logs: Path, task: TaskSpec, limit: int, on_action: Callable[[str], None]
    ) -> None:
        self.log = CappedLog(logs / f"{task.id}.log", limit, lambda m: f"[cpo] {m}")
        self.raw = CappedLog(logs / f"{task.id}.jsonl", limit, _json_notice)
        self.on_action = on_action

    def header(self, task: TaskSpec, where: str, attempt: int, s: TaskSettings) -> None:
        self.log.note(
            f"=== task {task.id} (wave {task.wave}) attempt {attempt} ===\n"
            f"worktree: {where}\nbranch:   {task.branch}\nbackend:  {s.backend}"
            f"{f' agent={task.agent}' if task.agent else ''}"
            f"{f' model={s.model}' if s.model else ''}\n"
            f"prompt:   {task.prompt_source}\nstart:    {now_iso()}\n"
        )
        self.log.flush()

    def event(self, event: AnyEvent) -> None:
        if isinstance(event, AgentLine):
            self.raw.write(event.raw)
            for text in event.logs:
                self.log.write(text)
            for action in event.actions:
                self.on_action(action)
            self.raw.flush()
        elif isinstance(event, LogLine):
            (self.log.note if event.cpo else self.log.write)(event.text)
        else:
            return
        self.log.flush()

    def __enter__(self) -> TaskLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.log.close()
        self.raw.close()


@dataclass(frozen=True)
class AgentRun:
    """What every agent run of one `cpo run` shares (the local executor's agents)."""

    parallel_dir: Path
    logs_dir: Path
    registry: ProcessRegistry
    masker: Masker
    on_action: Callable[[TaskSpec, str], None]

    def run(
        self,
        task: TaskSpec,
        settings: TaskSettings,
        worktree: Path,
        attempt_no: int,
        base: dict[str, str],
        *,
        resume: str | None = None,
        prompt: str | None = None,
        system_prompt: str = COMPLETION_PROTOCOL,
    ) -> AttemptResult:
        """Run the agent once in `worktree` with environment `base` (cpo.run.taskenv),
        streaming into the task's logs; its verdict. `resume`: the session to continue,
        with `prompt` as the next message (a nudge). `system_prompt`: cpo's completion
        protocol, or a conflict resolver's (cpo.run.resolve)."""
        if prompt is None:
            prompt = task.prompt if task.sparse is None else task.prompt + sparse_note(task.sparse)
        req = task_request(task, settings, worktree, self.parallel_dir, prompt, system_prompt)
        req = replace(req, resume=resume)
        with TaskLog(
            self.logs_dir, task, settings.log_limit, lambda a: self.on_action(task, a)
        ) as logs:
            if resume:
                logs.log.note(
                    f"=== task {task.id} attempt {attempt_no}: resuming session {resume} ==="
                )
            else:
                logs.header(task, str(worktree), attempt_no, settings)
            return run_attempt_agent(
                settings.backend,
                req,
                base_env=base,
                timeout=settings.timeout,
                idle_timeout=settings.idle_timeout,
                registry=self.registry,
                masker=self.masker,
                on_event=logs.event,
            )


def _json_notice(message: str) -> str:
    """cpo's notice as a line of the raw event log, which stays JSON lines."""
    return json.dumps({"type": "cpo", "message": message})
