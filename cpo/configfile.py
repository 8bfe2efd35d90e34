"""The settings files' schema: every key optional, so "set in this file" is knowable.

`cpo.config` reads the files with these models, merges them and applies precedence.
"""

# No `from __future__ import annotations`: pydantic would compile and evaluate each
# field's string annotation as the models are built, at every start of cpo.

from pydantic import AliasChoices, BaseModel, ByteSize, ConfigDict, Field, field_validator

from cpo.agents import backend_names
from cpo.agents.modes import ApprovalMode, SandboxMode
from cpo.duration import Duration
from cpo.plan.model import OnConflict


class _Section(BaseModel):
    # Built when a settings file is first read, not at every start (most have none).
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)
    # Hence each section's default is a factory: a default instance made in a class body
    # would build its model right there, at import.


class ParallelFile(_Section):
    max_workers: int | None = Field(default=None, ge=1)
    fail_fast: bool | None = None


class TimeoutsFile(_Section):
    task: Duration | None = None
    idle: Duration | None = None


class LogsFile(_Section):
    # Under a few kilobytes not even an error message would fit.
    max_size: ByteSize | None = Field(default=None, ge=1024)


class ServerFile(_Section):
    api_keys: tuple[str, ...] | None = None

    @field_validator("api_keys")
    @classmethod
    def _no_blank_key(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and any(not k.strip() for k in value):
            raise ValueError("an API key cannot be blank")
        return value


class WorktreeFile(_Section):
    # Extra `.worktreeinclude` patterns, and setup commands run in every worktree.
    include: tuple[str, ...] | None = None
    setup: tuple[str, ...] | None = None
    share: tuple[str, ...] | None = None

    @field_validator("setup", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("share")
    @classmethod
    def _inside(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for path in value or ():
            if path.startswith("/") or ".." in path.split("/") or not path.strip("/"):
                raise ValueError(f"{path!r}: must be a folder inside the repository")
        return value


class PortsFile(_Section):
    # The block of ports each running task holds (cpo.run.ports); per_task 0: none.
    per_task: int | None = Field(default=None, ge=0, le=1000)
    first: int | None = Field(default=None, ge=1024, le=65535)
    last: int | None = Field(default=None, ge=1024, le=65535)


class RayExecutorFile(_Section):
    # `--executor ray` (cpo.executors.ray); README: Running on a Ray cluster.
    address: str | None = None
    gcs_address: str | None = None
    resources: dict[str, float] | None = None
    env: tuple[str, ...] | None = None
    python: str | None = None

    @field_validator("env")
    @classmethod
    def _names(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for name in value or ():
            if not name.isidentifier() or not name.isascii():
                raise ValueError(f"{name!r} is not a variable name (the value is read from yours)")
        return value


class ExecutorsFile(_Section):
    ray: RayExecutorFile = Field(default_factory=RayExecutorFile)


class RunFile(_Section):
    # How a run gets past obstacles (README, "When things go wrong").
    repair: int | None = Field(default=None, ge=0, le=20)
    nudges: int | None = Field(default=None, ge=0, le=20)
    handoff: bool | None = None
    handoff_limit: int | None = Field(default=None, ge=200)
    strict_scope: bool | None = None
    on_conflict: OnConflict | None = None


class BackendFile(_Section):
    model: str | None = None
    max_turns: int | None = Field(default=None, ge=1)
    permission_mode: str | None = None
    approval_mode: ApprovalMode | None = None
    sandbox_mode: SandboxMode | None = None
    # clinvk calls them extra_flags; accept both spellings.
    extra_args: tuple[str, ...] | None = Field(
        default=None, validation_alias=AliasChoices("extra_args", "extra_flags")
    )


class ConfigFile(_Section):
    default_backend: str | None = None
    workspace_root: str | None = None
    parallel: ParallelFile = Field(default_factory=ParallelFile)
    timeouts: TimeoutsFile = Field(default_factory=TimeoutsFile)
    logs: LogsFile = Field(default_factory=LogsFile)
    server: ServerFile = Field(default_factory=ServerFile)
    worktree: WorktreeFile = Field(default_factory=WorktreeFile)
    ports: PortsFile = Field(default_factory=PortsFile)
    executors: ExecutorsFile = Field(default_factory=ExecutorsFile)
    run: RunFile = Field(default_factory=RunFile)
    backends: dict[str, BackendFile] = {}

    @field_validator("default_backend")
    @classmethod
    def _known_backend(cls, value: str | None) -> str | None:
        if value is not None and value not in backend_names():
            names = ", ".join(backend_names())
            raise ValueError(f"unknown backend {value!r}; choose one of: {names}")
        return value
