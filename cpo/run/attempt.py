"""One attempt's agent, judged by the completion protocol, told as executor events.

Shared by the local executor (cpo.run.tasklog writes the events into the task's logs)
and the worker (cpo.worker prints them as JSON lines): both run the agent the same way,
judge it by the same rule, and describe the attempt's end with the same `Exited`
(cpo.executors.spec), from which the task runner records it. So a task's record does not
depend on where its agent ran.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cpo.agents import get_backend
from cpo.agents.base import AgentEvent, AgentOutcome, AgentRequest
from cpo.executors.base import EventSink
from cpo.executors.spec import AgentLine, Exited, LogLine
from cpo.proc import ProcessRegistry, ProcResult
from cpo.run.agentrun import run_agent
from cpo.run.claim import Handover
from cpo.run.protocol import Marker, read_marker, verdict
from cpo.secrets import Masker


@dataclass(frozen=True)
class AttemptResult:
    ok: bool
    reason: str | None
    error: str | None
    outcome: AgentOutcome
    proc: ProcResult | None


def run_attempt_agent(
    backend: str,
    req: AgentRequest,
    *,
    base_env: Mapping[str, str],
    timeout: float | None,
    idle_timeout: float | None,
    registry: ProcessRegistry,
    masker: Masker,
    on_event: EventSink,
) -> AttemptResult:
    """Run the agent once in `req.worktree`, each output line to `on_event`; its verdict
    (README, `cpo run` step 4: the process, the agent's result and the marker)."""

    def on_line(line: str, events: list[AgentEvent]) -> None:
        logs = tuple(e.log for e in events if e.log)
        actions = tuple(e.action for e in events if e.action)
        on_event(AgentLine(raw=line, logs=logs, actions=actions))

    ran = run_agent(
        get_backend(backend),
        req,
        base_env=base_env,
        timeout=timeout,
        idle_timeout=idle_timeout,
        registry=registry,
        on_line=on_line,
        on_stderr=lambda line: on_event(LogLine(text=f"[stderr] {line}")),
        on_stop=lambda text: on_event(LogLine(text=text, cpo=True)),
        mask=masker.mask,
        split=masker.safe_split,
    )
    if ran.proc is None:
        on_event(LogLine(text=f"[cpo] {ran.start_error}", cpo=True))
        return AttemptResult(False, "crashed", ran.start_error, ran.outcome, None)
    marker = read_marker(req.worktree)
    reason, error = verdict(
        ran.proc, ran.outcome, marker.present, marker.says_incomplete, marker.data
    )
    return AttemptResult(reason is None, reason, error, ran.outcome, ran.proc)


def exited_of(
    result: AttemptResult,
    work: Handover,
    marker: Marker,
    log: Callable[[str], None],
    mask: Callable[[str], str] = str,
) -> Exited:
    """The attempt's end, once its work is on the task branch (cpo.run.claim.hand_over):
    failed if that work could not be the task's; what cpo did is said through `log`."""
    ok, reason, error = result.ok, result.reason, result.error
    if work.leftovers:
        log("[cpo] committed changes the agent left uncommitted")
    if work.reason is not None:
        log(f"[cpo] {work.reason}: {work.error}")
        if ok:  # an earlier failure stays the reason; the log says both
            ok, reason, error = False, work.reason, work.error
    o = result.outcome
    return Exited(
        ok=ok,
        reason=reason,
        error=mask(error) if error else None,
        exit_code=result.proc.returncode if result.proc else None,
        session_id=o.session_id,
        num_turns=o.num_turns,
        input_tokens=o.input_tokens,
        output_tokens=o.output_tokens,
        cost_usd=o.cost_usd,
        reset_at=o.reset_at,
        head=work.head,
        commits=work.commits,
        files=tuple(work.files),
        leftovers=work.leftovers,
        kept_branch=work.kept_branch,
        warnings=work.warnings,
        marker=marker.data if marker.present else None,
    )


@dataclass(frozen=True)
class Ran:
    """An attempt whose agent has ended: its verdict so far (whether launches must stop
    before its agent slot is free) and the rest of its bookkeeping, done once the slot
    is free (the work onto the task branch: the final verdict)."""

    ok: bool
    reason: str | None
    finish: Callable[[], Exited]

    @classmethod
    def of(cls, exited: Exited) -> Ran:
        return cls(exited.ok, exited.reason, lambda: exited)


def not_run(reason: str, error: str | None = None) -> Exited:
    """An attempt whose agent never ran (no slot, setup failed, no checkout)."""
    return Exited(ok=False, reason=reason, error=error)
