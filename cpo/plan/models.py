"""Pydantic models of the input files: the boundary where raw JSON/YAML becomes typed.

Unknown keys are allowed and kept (manifests come from other tools); misspelt known
keys are reported by the loader. Nothing past `cpo.plan.manifest` sees these models.
"""

# No `from __future__ import annotations`: pydantic would compile and evaluate each
# field's string annotation as the models are built, at every start of cpo.

import re
import reprlib
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
)

from cpo.agents import backend_names
from cpo.agents.modes import ApprovalMode, SandboxMode
from cpo.duration import Duration
from cpo.plan.model import OnConflict
from cpo.suggest import did_you_mean


class _Model(BaseModel):
    # defer_build: each model is built when first used, not as cpo starts; a run then
    # builds only the ones its spec's shape needs (not the legacy manifest's): ~7 ms.
    model_config = ConfigDict(
        extra="allow",
        frozen=True,
        strict=True,
        populate_by_name=True,
        allow_inf_nan=False,
        defer_build=True,
    )


def _integral(value: Any) -> Any:
    """JSON does not tell 2 from 2.0, nor does the JSON Schema's "integer": take both."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Int = Annotated[int, BeforeValidator(_integral)]
# The bound before the validator: the other way round pydantic writes `"ge": 1` into the
# JSON Schema, which schema validators ignore, instead of `"minimum": 1`.
PositiveInt = Annotated[int, Field(ge=1), BeforeValidator(_integral)]


class PythonValidation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)
    python: str


class ShellValidation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)
    shell: str


ValidationItem = str | PythonValidation | ShellValidation
ValidationField = ValidationItem | list[ValidationItem] | None

_VALIDATION_SHAPE = 'must be a string, a list of strings, or {"python": "..."} / {"shell": "..."}'


def _check_validation_item(item: Any) -> None:
    if isinstance(item, str):
        return
    if (
        isinstance(item, dict)
        and len(item) == 1
        and next(iter(item)) in ("python", "shell")
        and isinstance(next(iter(item.values())), str)
    ):
        return
    raise ValueError(f"{_VALIDATION_SHAPE}, not {short_repr(item)}")


# repr() with its size bounded: a huge value, or one YAML aliases share many times over,
# is quoted in a message without being walked whole.
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlevel = 3


def short_repr(value: Any) -> str:
    """A value as a message quotes it: repr(), at most 60 characters."""
    text = _REPR.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _commands_shape(value: Any) -> Any:
    if isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(v, str) for v in value)
    ):
        return value
    raise ValueError(f"must be a shell command line or a list of them, not {short_repr(value)}")


# One shell command line, or several run in order.
Commands = Annotated[
    str | list[str],
    BeforeValidator(_commands_shape, json_schema_input_type=str | list[str]),
]


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _env_shape(value: Any) -> Any:
    if not isinstance(value, dict):
        raise ValueError(f"must be a mapping of NAME: value, not {short_repr(value)}")
    for name, item in value.items():
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            raise ValueError(f"{short_repr(name)} is not an environment variable name")
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise ValueError(f"{name}: must be a string or a number, not {short_repr(item)}")
        if name.startswith("CPO_"):
            raise ValueError(f"{name}: CPO_ variables are set by cpo itself")
    return {name: str(item) for name, item in value.items()}


# Environment variables for setup commands and agents (cpo.run.taskenv).
EnvVars = Annotated[
    dict[str, str], BeforeValidator(_env_shape, json_schema_input_type=dict[str, str])
]


def _share_shape(value: Any) -> Any:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"must be a list of folder paths, not {short_repr(value)}")
    for path in value:
        parts = path.strip("/").split("/")
        if not path.strip("/") or path.startswith("/") or ".." in parts or ".git" in parts:
            raise ValueError(f"{path!r}: must be a folder inside the repository, like node_modules")
    return value


# Folders linked into every worktree from the user's checkout (cpo.run.ready).
SharedDirs = Annotated[list[str], BeforeValidator(_share_shape, json_schema_input_type=list[str])]

# "spec": task branches `feature/<spec>/<id>` (the default); "plain": `feature/<id>`.
BranchNames = Literal["spec", "plain"]

# The schema lists the backends; the validator below says which one was meant.
BackendName = Annotated[str, WithJsonSchema({"type": "string", "enum": backend_names()})]


class TaskOptions(_Model):
    """Per-task keys shared by manifest task entries and task-file frontmatter."""

    component: str | None = None
    wave: PositiveInt | None = None
    deps: list[str] | None = Field(None, validation_alias=AliasChoices("deps", "depends_on"))
    blocks: list[str] | None = None
    agent: str | None = None
    skills: list[str] | None = None
    contracts: list[str] | None = None
    backend: BackendName | None = None
    model: str | None = None
    timeout: Duration | None = None
    # How long the agent is expected to take: only orders launches (cpo.run.priority).
    estimate: Duration | None = None
    max_turns: PositiveInt | None = None
    permission_mode: str | None = None
    approval_mode: ApprovalMode | None = None
    sandbox_mode: SandboxMode | None = None
    prompt_file: str | None = None
    # Shell commands run in the task's worktree before its agent (cpo.run.ready).
    setup: Commands | None = None
    env: EnvVars | None = None
    # Check out only the folders of the task's Scope (cpo.plan.scope.sparse_folders).
    sparse: bool | None = None

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str | None) -> str | None:
        if value is not None and value not in backend_names():
            raise ValueError(
                f"unknown backend {value!r}{did_you_mean(value, backend_names())} "
                f"(choose one of: {', '.join(backend_names())})"
            )
        return value


class Frontmatter(TaskOptions):
    """The YAML frontmatter of a task file."""

    id: str


class ManifestTask(TaskOptions):
    """One task of a wave in a cpo-style manifest (a bare string is read as its id)."""

    id: str
    task_file: str | None = Field(None, validation_alias=AliasChoices("task_file", "file"))


class Wave(_Model):
    number: PositiveInt | None = Field(None, validation_alias=AliasChoices("number", "wave"))
    tasks: list[ManifestTask]
    validation: ValidationField = None

    # A task entry may be just its id: `"tasks": ["task-001", "task-002"]`.
    @field_validator("tasks", mode="before", json_schema_input_type=list[ManifestTask | str])
    @classmethod
    def _bare_ids(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"id": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("validation", mode="before")
    @classmethod
    def _validation_shape(cls, value: Any) -> Any:
        if value is None:
            return value
        if isinstance(value, list):
            for item in value:
                _check_validation_item(item)
        else:
            _check_validation_item(value)
        return value


class Metadata(_Model):
    max_parallel: PositiveInt | None = None


class TaskIndex(_Model):
    """The `tasks` block of a legacy decompose manifest."""

    total: Int | None = None
    waves: Int | None = None
    files: list[str] = []


class TechSpec(_Model):
    id: str
    name: str | None = None
    title: str | None = None


NonNegativeInt = Annotated[int, Field(ge=0), BeforeValidator(_integral)]


class _RunKeys(_Model):
    """How a run gets past obstacles (README, "When things go wrong"); flags win."""

    repair: NonNegativeInt | None = None  # repair attempts per failed wave validation
    nudges: NonNegativeInt | None = None  # continuations of an agent that stopped early
    handoff: bool | None = None  # "What your dependencies built" in dependents' prompts
    handoff_limit: PositiveInt | None = None  # characters of that section
    strict_scope: bool | None = None  # a file changed outside the task's scope fails it
    on_conflict: OnConflict | None = None  # what a task's conflicting merge leads to


RUN_KEYS = frozenset(_RunKeys.model_fields)


class CpoManifest(_RunKeys):
    """manifest.json in cpo style: waves listed in the manifest."""

    tech_spec_id: str
    name: str | None = None
    technology: str | None = None
    max_parallel: PositiveInt | None = None
    waves: list[Wave]
    metadata: Metadata | None = None
    branch_names: BranchNames | None = None
    # Run in every task worktree (before the task's own) and in the integration worktree.
    setup: Commands | None = None
    # Patterns added to `.worktreeinclude`'s: untracked files copied into every worktree.
    worktree_include: list[str] | None = None
    share: SharedDirs | None = None
    env: EnvVars | None = None
    # Every task's default for `sparse` (a task's own `sparse` wins).
    sparse: bool | None = None


class LegacyManifest(_RunKeys):
    """manifest.json in legacy decompose style: task files listed, waves in their frontmatter."""

    version: str | None = None
    tech_spec: TechSpec
    name: str | None = None
    technology: str | None = None
    max_parallel: PositiveInt | None = None
    tasks: TaskIndex
    metadata: Metadata | None = None
    branch_names: BranchNames | None = None
    # Run in every task worktree (before the task's own) and in the integration worktree.
    setup: Commands | None = None
    # Patterns added to `.worktreeinclude`'s: untracked files copied into every worktree.
    worktree_include: list[str] | None = None
    share: SharedDirs | None = None
    env: EnvVars | None = None
    # Every task's default for `sparse` (a task's own `sparse` wins).
    sparse: bool | None = None


def _aliases(model: type[BaseModel]) -> dict[str, list[str]]:
    """Field name -> the other names it may be written with (`deps`: `depends_on`)."""
    out: dict[str, list[str]] = {}
    for name, info in model.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            out[name] = [a for a in alias.choices if isinstance(a, str) and a != name]
    return out


def known_keys(model: type[BaseModel]) -> set[str]:
    """Field names and aliases a model understands: the vocabulary for did-you-mean."""
    keys = set(model.model_fields)
    for aliases in _aliases(model).values():
        keys.update(aliases)
    return keys


def manifest_json_schema() -> dict[str, Any]:
    """JSON Schema accepting either manifest style: what `cpo validate` accepts."""
    from pydantic import TypeAdapter

    schema = TypeAdapter(CpoManifest | LegacyManifest).json_schema(mode="validation")
    # pydantic names only the first spelling of a field. The others are read, like pydantic
    # reads them, only when no earlier spelling is there (`depends_on` when there is no `deps`).
    for model in (Wave, ManifestTask):
        spec = schema["$defs"][model.__name__]
        for name, aliases in _aliases(model).items():
            earlier = [name]
            for alias in aliases:
                spec.setdefault("allOf", []).append(
                    {
                        "if": {"anyOf": [{"required": [n]} for n in earlier]},
                        "else": {"properties": {alias: spec["properties"][name]}},
                    }
                )
                earlier.append(alias)
    schema["title"] = "cpo manifest.json"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
