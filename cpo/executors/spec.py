"""What crosses the executor boundary, as pydantic models: the launch, the events, the handle.

A `TaskLaunch` holds everything a worker needs to run one attempt of one task on any
machine that reaches the git remote: no path of the coordinator's, no secret (variables
named in `env_names` are read from the worker's own environment). The worker answers with
one JSON object per line (`dump_event`/`parse_event`): `started`, `log` (a line for the
readable task log), `agent_event` (one agent output line, with what its backend parsed
from it) and, last, `exited` (the verdict and the branch head: everything the coordinator
records of the attempt, the same for every executor).
"""

# No `from __future__ import annotations`: pydantic would compile and evaluate each
# field's string annotation as the models are built, at every start of cpo.

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

LAUNCH_VERSION: Literal[1] = 1


class _Frozen(BaseModel):
    # Built at first use (an agent's first event), not as cpo starts: ~3 ms sooner.
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class AgentLaunch(_Frozen):
    """The agent's options after precedence (cpo.run.agentrun.TaskSettings)."""

    backend: str
    model: str | None = None
    max_turns: int | None = None
    permission_mode: str | None = None
    approval_mode: str | None = None
    sandbox_mode: str | None = None
    agent: str | None = None  # claude: --agent NAME
    command: str | None = None  # the `command` backend's shell command
    extra_args: tuple[str, ...] = ()


class PortsLaunch(_Frozen):
    """Where the worker takes its block of ports (cpo.run.ports.PortRange)."""

    first: int
    last: int
    count: int


class TaskLaunch(_Frozen):
    """One attempt of one task, self-contained (`cpo worker run-task SPEC.json`)."""

    version: Literal[1] = LAUNCH_VERSION
    spec_id: str
    task_id: str
    wave: int
    attempt: int = Field(ge=1)
    remote: str = Field(description="git URL the worker fetches from and pushes to")
    branch: str = Field(description="attempt-scoped branch on the remote, at start_commit")
    start_commit: str
    agent: AgentLaunch
    prompt: str
    prompt_source: str = ""
    # Set as given (after `$NAME` expansion from the worker's environment): cpo's task
    # variables and the spec's `env:`, never a secret's value.
    env: dict[str, str] = Field(default_factory=dict)
    env_names: tuple[str, ...] = Field(
        default=(), description="variables passed by name from the worker's environment"
    )
    timeout: float | None = None
    idle_timeout: float | None = None
    grace: float = 5.0  # seconds between SIGTERM and SIGKILL of the agent's group
    resources: dict[str, float] = Field(default_factory=dict)
    # Readying the clone before the agent, as `cpo run` readies a worktree (cpo.run.ready).
    setup: tuple[str, ...] = Field(default=(), description="setup commands, spec's then task's")
    sparse: tuple[str, ...] | None = Field(
        default=None, description="folders of a cone sparse checkout; None: a whole one"
    )
    ports: PortsLaunch | None = None  # a block of ports taken on the worker's machine
    nudges: int = Field(default=0, ge=0, description="resumes of an agent that stops early")

    def longest(self) -> float | None:
        """The longest the worker may take past its `started` event: each setup command
        and each run of the agent (the first and every nudge) up to the timeout, each
        agent stop with its grace; None: no timeout, no bound."""
        if self.timeout is None:
            return None
        runs = 1 + self.nudges
        return self.timeout * (runs + len(self.setup)) + self.grace * runs

    def longest_quiet(self) -> float | None:
        """The longest the worker may print nothing: the idle timeout with its grace, or a
        setup command's run (its output comes when it ends); None: no bound."""
        if self.idle_timeout is None:
            return None
        quiet = self.idle_timeout + self.grace
        if self.setup:
            return None if self.timeout is None else max(quiet, self.timeout)
        return quiet


class Handle(_Frozen):
    """Which executor runs an attempt and its id there (kept in report.json, for adopt)."""

    executor: str
    id: str
    data: dict[str, str] = Field(default_factory=dict)


# -- events ------------------------------------------------------------------------------
class Started(_Frozen):
    type: Literal["started"] = "started"
    host: str = ""
    pid: int | None = None
    workdir: str = ""


class LogLine(_Frozen):
    """A line for the task's readable log: the agent's stderr (`[stderr] ...`), or with
    `cpo` set, cpo's own (`[cpo] ...`), written even past the log's size cap."""

    type: Literal["log"] = "log"
    text: str
    cpo: bool = False


class AgentLine(_Frozen):
    """One line of the agent's output (the raw log), with what the backend read in it."""

    type: Literal["agent_event"] = "agent_event"
    raw: str
    logs: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()


class Exited(_Frozen):
    """How an attempt ended: the verdict, the work on its branch, the agent's costs."""

    type: Literal["exited"] = "exited"
    ok: bool
    reason: str | None = None
    error: str | None = None
    exit_code: int | None = None
    # The agent's own record (cpo.agents.base.AgentOutcome).
    session_id: str | None = None
    num_turns: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    reset_at: float | None = None  # a usage limit lifts then (epoch seconds)
    # The attempt's branch: its head and what it holds since the start commit.
    head: str | None = None
    commits: int = 0
    files: tuple[str, ...] = ()
    leftovers: bool = False  # cpo committed what the agent left uncommitted
    kept_branch: str | None = None
    warnings: tuple[str, ...] = ()
    marker: dict[str, Any] | None = None
    # What readying the clone and resuming the agent did: the attempt's record
    # (cpo.run.report.Attempt's `setup`, `ports` and `nudges`, field for field).
    setup: tuple[dict[str, Any], ...] = ()
    ports: tuple[int, ...] = ()  # (first, last) of the block held; () for none
    nudges: tuple[dict[str, Any], ...] = ()


AnyEvent = Started | LogLine | AgentLine | Exited
_EVENT: TypeAdapter[AnyEvent] = TypeAdapter(
    Annotated[AnyEvent, Field(discriminator="type")], config=ConfigDict(defer_build=True)
)


def dump_event(event: AnyEvent) -> str:
    """One line of JSON, no newline."""
    return event.model_dump_json()


def parse_event(line: str) -> AnyEvent | None:
    """The event on one line of a worker's output; None for anything else (a stray print
    by a library, a line of a job runner's own)."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        return _EVENT.validate_json(text)
    except ValueError:
        return None
