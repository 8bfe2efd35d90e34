"""Request and response bodies of the API (they make the OpenAPI document)."""

# No `from __future__ import annotations`: pydantic would compile and evaluate each
# field's string annotation as the models are built, at every start of cpo.

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cpo.agents import backend_names
from cpo.duration import Duration, format_duration


class RunRequest(BaseModel):
    """POST /api/v1/runs: `cpo run`'s options, by their long names without dashes.

    An unknown key is an error (a misspelt option must not be ignored silently). The
    `command` backend's shell command and the workspace root are not offered: an API
    client chooses among the agents, it does not run commands of its own.
    """

    model_config = ConfigDict(extra="forbid")

    dir: str = Field(min_length=1, description="The parallel directory, inside a --root")
    max_concurrent: int | None = Field(default=None, ge=1)
    wave: int | None = Field(default=None, ge=1)
    skip: list[str] = Field(default_factory=list)
    resume: bool = False
    retry_failed: bool = False
    fail_fast: bool | None = None
    timeout: Duration | None = None
    idle_timeout: Duration | None = None
    schedule: Literal["waves", "dag"] = "waves"
    no_integration: bool = False
    backend: str | None = None
    model: str | None = None
    max_turns: int | None = Field(default=None, ge=1)
    retries: int | None = Field(default=None, ge=0)
    allow_dirty: bool = False

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str | None) -> str | None:
        usable = [b for b in backend_names() if b != "command"]
        if value is not None and value not in usable:
            raise ValueError(f"unknown backend {value!r} (choose one of: {', '.join(usable)})")
        return value

    def argv(self) -> list[str]:
        """The `cpo run` options this request stands for."""
        args: list[str] = []
        for flag, value in (
            ("--max-concurrent", self.max_concurrent),
            ("--wave", self.wave),
            ("--backend", self.backend),
            ("--model", self.model),
            ("--max-turns", self.max_turns),
            ("--retries", self.retries),
        ):
            if value is not None:
                args += [flag, str(value)]
        for flag, seconds in (("--timeout", self.timeout), ("--idle-timeout", self.idle_timeout)):
            if seconds is not None:
                args += [flag, format_duration(seconds)]
        if self.skip:
            args += ["--skip", ",".join(self.skip)]
        if self.fail_fast is not None:
            args.append("--fail-fast" if self.fail_fast else "--no-fail-fast")
        if self.schedule != "waves":
            args += ["--schedule", self.schedule]
        for flag, on in (
            ("--resume", self.resume),
            ("--retry-failed", self.retry_failed),
            ("--no-integration", self.no_integration),
            ("--allow-dirty", self.allow_dirty),
        ):
            if on:
                args.append(flag)
        return args


class Started(BaseModel):
    id: str
    dir: str
    pid: int
    state: str = "running"
    links: dict[str, str] = Field(default_factory=dict)


class Cancelling(BaseModel):
    id: str
    pid: int
    state: Literal["cancelling"] = "cancelling"


class Backend(BaseModel):
    name: str
    available: bool
    version: str | None = None
    path: str | None = None


class Backends(BaseModel):
    backends: list[Backend]


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    uptime: str
    uptime_millis: int
    backends: list[Backend]
    roots: list[str]
    auth: bool


class RunList(BaseModel):
    runs: list[dict[str, Any]]
    total: int


class LogTail(BaseModel):
    id: str
    task: str
    path: str
    lines: list[str]
    size: int
