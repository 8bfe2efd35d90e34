"""What every agent backend provides, and the common record its output is parsed into.

A backend is a few pure pieces: the argv and environment for one task, the requested
options its CLI cannot honour, a preflight, and a parser that turns the agent's output
lines, fed as they arrive, into readable log lines, a short "last action", and at the
end an `AgentOutcome`. Spawning, streaming and killing are `cpo.proc`'s and
`cpo.run.agentrun`'s job, so backends never touch processes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

# Why a task's agent failed, as far as its own output tells. `crashed`: it produced no
# final result at all. `usage_limit`: a quota with a reset time (see AgentOutcome.reset_at).
ErrorClass = Literal[
    "auth",
    "rate_limited",
    "overloaded",
    "usage_limit",
    "max_turns",
    "agent_error",
    "crashed",
    "bad_flag",
]


@dataclass(frozen=True)
class AgentRequest:
    """Everything a backend needs to build one agent invocation."""

    task_id: str
    wave: int
    prompt: str  # sent on stdin, never on the command line
    worktree: Path
    parallel_dir: Path
    system_prompt: str = ""  # cpo's completion protocol, appended to the agent's own
    agent: str | None = None  # claude: --agent NAME
    model: str | None = None
    max_turns: int | None = None
    permission_mode: str | None = None  # backend-specific mode name
    approval_mode: str | None = None  # backend-neutral: default | auto | none | always
    sandbox_mode: str | None = None  # backend-neutral: default | read-only | workspace | full
    command: str | None = None  # the `command` backend's shell command
    extra_args: tuple[str, ...] = ()
    # Continue this earlier session of the agent instead of starting one (a nudge,
    # cpo.run.nudge); only for a backend whose `resumes` is true.
    resume: str | None = None


@dataclass(frozen=True)
class AgentEvent:
    """What one output line meant: text for the readable log, and/or a short action."""

    log: str | None = None
    action: str | None = None  # e.g. "Write src/a.py", "Bash: pytest -q"
    # Set when the agent cannot succeed and waiting is only cost (e.g. the API rejects the
    # key while the CLI keeps retrying for minutes): cpo stops the agent at once.
    fatal: ErrorClass | None = None


@dataclass(frozen=True)
class AgentOutcome:
    """The common record of one agent run, whatever the backend."""

    final_text: str | None = None
    reported_result: bool = False  # the agent emitted a final result record
    is_error: bool = False
    error_class: ErrorClass | None = None
    error_text: str | None = None
    session_id: str | None = None
    num_turns: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    reset_at: float | None = None  # epoch seconds when a usage limit lifts, if said
    extra: Mapping[str, object] = field(default_factory=dict)


class EventParser(Protocol):
    def feed(self, line: str) -> list[AgentEvent]:
        """Parse one output line (without its newline) as it arrives."""
        ...

    def finish(self, exit_code: int | None, stderr_tail: str) -> AgentOutcome:
        """Called once after the process ended; classifies the run."""
        ...


class Backend(Protocol):
    name: str
    resumes: bool  # its CLI can continue a session by id (AgentRequest.resume)

    def executable(self, req: AgentRequest) -> str | None:
        """The program that must be on PATH (None when nothing needs checking)."""
        ...

    def argv(self, req: AgentRequest) -> list[str]: ...

    def env(self, req: AgentRequest, base: Mapping[str, str]) -> dict[str, str]: ...

    def unsupported(self, req: AgentRequest) -> list[str]:
        """Requested options this CLI cannot honour, one line each, starting `<name>: `."""
        ...

    def preflight(self, reqs: list[AgentRequest], env: Mapping[str, str]) -> list[str]:
        """Problems that would make every task fail, each one line with the fix."""
        ...

    def parser(self) -> EventParser: ...
