"""Pydantic models of the input files: the boundary where raw JSON/YAML becomes typed.

Unknown keys are allowed and kept (manifests come from other tools); misspelt known
keys are reported by the loader. Nothing past `cpo.plan.manifest` sees these models.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
)


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="allow", frozen=True, strict=True, populate_by_name=True, allow_inf_nan=False
    )


PositiveInt = Annotated[int, Field(ge=1)]


class PythonValidation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    python: str


class ShellValidation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    shell: str


ValidationItem = str | PythonValidation | ShellValidation
ValidationField = ValidationItem | list[ValidationItem] | None

_VALIDATION_SHAPE = 'must be a string, a list of strings, or {"python": "..."} / {"shell": "..."}'


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")
_UNIT = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: object) -> float | None:
    """Seconds from a number or a string like "90", "30s", "15m", "2h"; None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("expected seconds, or a number with s/m/h such as 90s, 15m, 2h")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNIT[m.group(2)]
    else:
        raise ValueError("expected seconds, or a number with s/m/h such as 90s, 15m, 2h")
    if seconds <= 0:
        raise ValueError("must be more than 0 seconds")
    return seconds


# A duration in a task file or manifest: seconds, or "90s", "15m", "2h".
Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {"type": "string", "pattern": _DURATION.pattern},
            ],
            "description": 'seconds, or a number with s/m/h such as "90s", "15m", "2h"',
        }
    ),
]


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
    raise ValueError(f"{_VALIDATION_SHAPE}, not {_short(item)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class TaskOptions(_Model):
    """Per-task keys shared by manifest task entries and task-file frontmatter."""

    component: str | None = None
    wave: PositiveInt | None = None
    deps: list[str] | None = Field(None, validation_alias=AliasChoices("deps", "depends_on"))
    blocks: list[str] | None = None
    agent: str | None = None
    skills: list[str] | None = None
    contracts: list[str] | None = None
    backend: str | None = None
    model: str | None = None
    timeout: Annotated[float, Field(gt=0)] | None = None
    # How long the agent is expected to take: only orders launches (cpo.run.priority).
    estimate: Duration | None = None
    max_turns: PositiveInt | None = None
    permission_mode: str | None = None
    prompt_file: str | None = None


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

    @field_validator("tasks", mode="before")
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

    total: int | None = None
    waves: int | None = None
    files: list[str] = []


class TechSpec(_Model):
    id: str
    name: str | None = None
    title: str | None = None


class CpoManifest(_Model):
    """manifest.json in cpo style: waves listed in the manifest."""

    tech_spec_id: str
    name: str | None = None
    technology: str | None = None
    max_parallel: PositiveInt | None = None
    waves: list[Wave]
    metadata: Metadata | None = None


class LegacyManifest(_Model):
    """manifest.json in legacy decompose style: task files listed, waves in their frontmatter."""

    version: str | None = None
    tech_spec: TechSpec
    name: str | None = None
    technology: str | None = None
    max_parallel: PositiveInt | None = None
    tasks: TaskIndex
    metadata: Metadata | None = None


def known_keys(model: type[BaseModel]) -> set[str]:
    """Field names and aliases a model understands: the vocabulary for did-you-mean."""
    keys: set[str] = set()
    for name, info in model.model_fields.items():
        keys.add(name)
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            keys.update(a for a in alias.choices if isinstance(a, str))
    return keys


def manifest_json_schema() -> dict[str, Any]:
    """JSON Schema accepting either manifest style."""
    from pydantic import TypeAdapter

    schema = TypeAdapter(CpoManifest | LegacyManifest).json_schema(mode="validation")
    schema["title"] = "cpo manifest.json"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
