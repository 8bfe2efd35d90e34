"""Reading a parallel directory's manifest.json and finding its task files.

Three input forms (README, "The parallel directory"): a cpo-style manifest with waves, a
legacy decompose manifest listing task files, or task files alone. Problems are collected
in a `Report`, all at once; `cpo.plan.load.load_plan` puts the pieces together.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from cpo.errors import Problem, UsageError
from cpo.plan.models import (
    CpoManifest,
    LegacyManifest,
    ManifestTask,
    Metadata,
    TaskIndex,
    TechSpec,
    Wave,
    known_keys,
    short_repr,
)
from cpo.plan.paths import inside, read_text
from cpo.plan.taskfile import RawTaskFile, parse_task_file
from cpo.suggest import did_you_mean

MANIFEST = "manifest.json"
Style = Literal["cpo", "legacy", "none"]


@dataclass
class Report:
    """Problems and warnings collected while loading (mutable only during loading)."""

    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def error(self, file: str, where: str, message: str) -> None:
        self.problems.append(Problem(file, where, message))

    def warn(self, file: str, where: str, message: str) -> None:
        self.warnings.append(Problem(file, where, message, severity="warning"))


# ---------------------------------------------------------------- pydantic boundary


def _loc(parts: tuple[int | str, ...], prefix: str = "") -> str:
    out = prefix
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def validate_model(
    model: type[BaseModel], raw: dict[str, Any], file: str, prefix: str, report: Report
) -> Any:
    """`model.model_validate(raw)`, turning each pydantic error into one Problem line."""
    _check_keys(model, raw, file, prefix, report)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        seen: set[str] = set()
        for err in exc.errors(include_url=False):
            where = _loc(err["loc"], prefix)
            if where in seen:
                continue
            seen.add(where)
            msg = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "missing":
                msg = "required key is missing"
            elif err["type"] not in ("value_error",):
                msg = f"{msg} (got {short_repr(err.get('input'))})"
            report.error(file, where, msg)
        return None


def _check_keys(
    model: type[BaseModel], raw: dict[str, Any], file: str, prefix: str, report: Report
) -> None:
    """Warn about unknown keys that look like misspelt known ones (others are ignored)."""
    known = _KNOWN.get(model)
    if known is None:
        known = _KNOWN[model] = sorted(known_keys(model))
    for key in raw:
        if key in known or not isinstance(key, str):
            continue
        hint = did_you_mean(key, known)
        if hint:
            report.warn(file, _loc((key,), prefix), f"unknown key {key!r}{hint}")
    for name, sub in _NESTED.get(model, {}).items():
        value = raw.get(name)
        if isinstance(value, dict):
            _check_keys(sub, value, file, _loc((name,), prefix), report)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    _check_keys(sub, item, file, _loc((name, i), prefix), report)


_KNOWN: dict[type[BaseModel], list[str]] = {}
_NESTED: dict[type[BaseModel], dict[str, type[BaseModel]]] = {
    CpoManifest: {"waves": Wave, "metadata": Metadata},
    LegacyManifest: {"tech_spec": TechSpec, "tasks": TaskIndex, "metadata": Metadata},
    Wave: {"tasks": ManifestTask},
}


# ---------------------------------------------------------------- reading files


@dataclass(frozen=True)
class ManifestFile:
    style: Style
    raw: dict[str, Any]
    model: CpoManifest | LegacyManifest | None  # None when invalid (problems reported)


def read_manifest(root: Path, root_real: str, report: Report) -> ManifestFile | None:
    """manifest.json parsed and validated, or None when there is none or it is unusable."""
    path = root / MANIFEST
    if not path.exists():
        return None
    # Held to the same rule as task and prompt files: nothing from outside the directory.
    _, why = inside(root_real, MANIFEST)
    if why is not None:
        report.error(MANIFEST, "", f"{why}; copy the file into the directory instead")
        return None
    text, why = read_text(path)
    if text is None:
        if why and why.startswith("cannot be read"):
            raise UsageError(f"{path}: {why}")
        report.error(MANIFEST, "", str(why))
        return None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        report.error(
            MANIFEST, "", f"line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}"
        )
        return None
    except RecursionError:
        report.error(MANIFEST, "", "invalid JSON: nested too deeply")
        return None
    except ValueError as exc:  # e.g. an integer literal longer than Python's digit limit
        report.error(MANIFEST, "", f"invalid JSON: {exc}")
        return None
    if not isinstance(raw, dict):
        report.error(MANIFEST, "", f"must be a JSON object, not {type(raw).__name__}")
        return None
    if "waves" in raw:
        style: Style = "cpo"
        model: type[BaseModel] = CpoManifest
    elif "tasks" in raw or "tech_spec" in raw:
        style, model = "legacy", LegacyManifest
    else:
        report.error(
            MANIFEST,
            "",
            "has neither 'waves' (cpo style) nor 'tasks.files' (legacy style); "
            "see `cpo schema manifest`",
        )
        _check_keys(CpoManifest, raw, MANIFEST, "", report)
        return ManifestFile("cpo", raw, None)
    parsed = validate_model(model, raw, MANIFEST, "", report)
    return ManifestFile(style, raw, parsed)


TaskFileRef = tuple[str, str, str]  # (relative path, file and field that named it)


def task_file_paths(root: Path, manifest: ManifestFile | None) -> list[TaskFileRef]:
    """The task files: `tasks.files` of the manifest, else tasks/*.md; plus any manifest
    task entry's `task_file` not already among them."""
    refs: list[TaskFileRef] = []
    if manifest is not None:
        tasks = manifest.raw.get("tasks")
        files = tasks.get("files") if isinstance(tasks, dict) else None
        if isinstance(files, list) and files and all(isinstance(f, str) for f in files):
            refs = [(f, MANIFEST, f"tasks.files[{i}]") for i, f in enumerate(files)]
    if not refs:
        refs = [(rel, rel, "") for rel in _glob_tasks(root)]
    if manifest is not None and isinstance(manifest.model, CpoManifest):
        seen = {os.path.normpath(r) for r, _, _ in refs}
        for wi, wave in enumerate(manifest.model.waves):
            for ti, entry in enumerate(wave.tasks):
                if entry.task_file and os.path.normpath(entry.task_file) not in seen:
                    seen.add(os.path.normpath(entry.task_file))
                    refs.append((entry.task_file, MANIFEST, f"waves[{wi}].tasks[{ti}].task_file"))
    return refs


def _glob_tasks(root: Path) -> list[str]:
    tasks_dir = root / "tasks"
    try:
        with os.scandir(tasks_dir) as it:
            names = [e.name for e in it if e.name.endswith(".md") and not e.name.startswith(".")]
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise UsageError(f"{tasks_dir}: cannot be read: {exc.strerror or exc}") from exc
    return [f"tasks/{n}" for n in sorted(names)]


def read_task_files(root_real: str, refs: list[TaskFileRef], report: Report) -> list[RawTaskFile]:
    out = []
    for rel, file, where in refs:
        path, why = inside(root_real, rel)
        if path is None:
            report.error(file, where, f"task file {why}")
            continue
        text, why = read_text(path)
        if text is None:
            if file == rel:
                report.error(rel, "", str(why))
            else:
                report.error(file, where, f"task file {rel}: {why}")
            continue
        parsed = parse_task_file(os.path.normpath(rel), text)
        if isinstance(parsed, Problem):
            report.problems.append(parsed)
        else:
            out.append(parsed)
    return out


def check_directory(path: Path) -> Path:
    """The parallel directory, absolute; UsageError when it cannot be used at all."""
    if not path.exists():
        raise UsageError(
            f"{path}: no such directory", hint="create one with `cpo init <dir> -t ID -n name`"
        )
    if not path.is_dir():
        raise UsageError(
            f"{path}: not a directory",
            hint="give the parallel directory: the folder holding manifest.json or tasks/",
        )
    try:
        entries = os.listdir(path)
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
    has_tasks = (path / "tasks").is_dir() and any(
        n.endswith(".md") for n in _listdir_or_empty(path / "tasks")
    )
    if MANIFEST not in entries and not has_tasks:
        raise UsageError(
            f"{path}: no {MANIFEST} and no tasks/*.md: not a parallel directory",
            hint="create one with `cpo init <dir> -t ID -n name`",
        )
    return path.absolute()


def _listdir_or_empty(path: Path) -> list[str]:
    try:
        return os.listdir(path)
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
