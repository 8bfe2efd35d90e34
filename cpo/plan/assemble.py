"""The last step of loading: joined task drafts become frozen `TaskSpec`s, waves and a `Plan`.

Per task: id and branch-name checks, prompt resolution and section checks, contracts,
scope, content hash. Per plan: wave layout, validation commands, scope conflicts.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cpo.plan.join import (
    Draft,
    assign_waves,
    index_files,
    join_deps,
    join_manifest,
    merge_options,
)
from cpo.plan.manifest import MANIFEST, ManifestFile, Report
from cpo.plan.model import HASH_RECIPE, Plan, ScopeEntry, TaskSpec, ValidationStep, WaveSpec
from cpo.plan.models import (
    RUN_KEYS,
    CpoManifest,
    Frontmatter,
    LegacyManifest,
    ValidationField,
)
from cpo.plan.names import ref_name_problem, task_branch
from cpo.plan.paths import exists, inside
from cpo.plan.prompts import missing_sections, resolve_prompt, uses_sections
from cpo.plan.scope import ScopedTask, parse_scope, scope_conflicts, sparse_folders
from cpo.plan.taskfile import RawTaskFile


def build_plan(
    *,
    root: Path,
    root_real: str,
    manifest: ManifestFile | None,
    task_files: Sequence[tuple[RawTaskFile, Frontmatter]],
    report: Report,
    strict: bool,
) -> Plan | None:
    """The Plan, or None when the problems already reported make one impossible."""
    by_id, aliases = index_files(task_files, report)
    model = manifest.model if manifest is not None else None
    if manifest is not None and model is None:
        return None  # the manifest itself is invalid; its problems are reported
    if isinstance(model, CpoManifest):
        order = join_manifest(model, by_id, aliases, report)
        drafts = {d.id: d for d in order}
        for d in by_id.values():  # files in no wave: reported, still checked
            drafts.setdefault(d.id, d)
    elif isinstance(model, LegacyManifest):
        drafts = dict(by_id)
    else:
        drafts = dict(sorted(by_id.items()))
    if not drafts:
        report.error(MANIFEST if manifest else "tasks", "", "no tasks found")
        return None
    for d in drafts.values():
        merge_options(d, report)
        if d.options["sparse"] is None and model is not None:
            d.options["sparse"] = model.sparse  # the spec's default
    join_deps(drafts, aliases, report)
    waves = assign_waves(drafts, report)

    prompt_names = _list_prompts(root)
    spec_id, name = _identity(root, model, report)
    branch_names = (model.branch_names if model is not None else None) or "spec"
    namespace = spec_id if branch_names == "spec" else None
    tasks: dict[str, TaskSpec] = {}
    for d in drafts.values():
        spec = build_task(d, waves[d.id], root_real, prompt_names, report, strict, namespace)
        if spec is not None:
            tasks[d.id] = spec
    report.problems.extend(
        scope_conflicts(
            [
                ScopedTask(t.id, t.wave, t.task_file or MANIFEST, t.scope)
                for t in tasks.values()
                if t.scope
            ]
        )
    )
    wave_specs = _waves(model, tasks, report)
    if isinstance(model, LegacyManifest):
        _check_legacy_counts(model, len(tasks), len(wave_specs), report)
    max_parallel = None
    if model is not None:
        meta = model.metadata.max_parallel if model.metadata is not None else None
        max_parallel = model.max_parallel or meta
    return Plan(
        root=root,
        spec_id=spec_id,
        waves=wave_specs,
        tasks=tasks,
        name=name,
        technology=model.technology if model is not None else None,
        max_parallel=max_parallel,
        manifest_style="none"
        if model is None
        else ("cpo" if isinstance(model, CpoManifest) else "legacy"),
        branch_names=branch_names,
        setup=commands(model.setup) if model is not None and model.setup is not None else None,
        include=tuple(model.worktree_include or ()) if model is not None else (),
        env=tuple((model.env or {}).items()) if model is not None else (),
        share=tuple(p.strip("/") for p in model.share or ()) if model is not None else (),
        warnings=tuple(report.warnings),
        run_keys=model.model_dump(include=set(RUN_KEYS), exclude_none=True) if model else {},
    )


def _sparse(d: Draft, scope: tuple[ScopeEntry, ...], report: Report) -> tuple[str, ...] | None:
    """The folders of a `sparse: true` task's checkout; None (and a warning) if its scope
    names nothing to create or modify."""
    folders = sparse_folders(scope)
    if folders is None:
        file, where = d.place("sparse")
        report.warn(
            file,
            where,
            f"sparse: true, but {d.id} has no Scope section naming paths to CREATE or "
            "MODIFY: it gets a full checkout; add a ## Scope section",
        )
    return folders


def commands(value: str | list[str] | None) -> tuple[str, ...]:
    """A `setup` value (one command line or a list) as the commands to run, in order."""
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _list_prompts(root: Path) -> set[str]:
    try:
        return {n for n in os.listdir(root / "prompts") if n.endswith(".txt")}
    except OSError:
        return set()


def _identity(
    root: Path, model: CpoManifest | LegacyManifest | None, report: Report
) -> tuple[str, str | None]:
    if isinstance(model, CpoManifest):
        spec_id, name, where = model.tech_spec_id, model.name, "tech_spec_id"
    elif isinstance(model, LegacyManifest):
        ts = model.tech_spec
        spec_id, name, where = ts.id, model.name or ts.name or ts.title, "tech_spec.id"
    else:
        spec_id, name, where = root.name, None, ""
        report.warn(
            "tasks",
            "",
            f"no {MANIFEST}: spec id {spec_id!r} taken from the directory name and waves "
            "inferred from the task files; add a manifest.json to set them",
        )
    why = ref_name_problem(spec_id)
    if why:
        file = MANIFEST if model is not None else root.name
        report.error(
            file,
            where,
            f"spec id {spec_id!r} cannot be part of the branch name integration/{spec_id}: {why}",
        )
    return spec_id, name


def _waves(
    model: CpoManifest | LegacyManifest | None, tasks: dict[str, TaskSpec], report: Report
) -> tuple[WaveSpec, ...]:
    by_wave: dict[int, list[str]] = {}
    for t in tasks.values():
        by_wave.setdefault(t.wave, []).append(t.id)
    if isinstance(model, CpoManifest):
        seen: dict[int, int] = {}
        out = []
        for wi, wave in enumerate(model.waves):
            number = wave.number or wi + 1
            if number in seen:
                report.error(
                    MANIFEST,
                    f"waves[{wi}].number",
                    f"wave {number} appears twice "
                    f"(also waves[{seen[number]}]); give each wave its own number",
                )
                continue
            seen[number] = wi
            ids = tuple(by_wave.get(number, ()))
            if not ids and not wave.tasks:
                report.warn(MANIFEST, f"waves[{wi}].tasks", f"wave {number} has no tasks")
                continue
            steps = validation_steps(wave.validation)
            for si, step in enumerate(steps):
                why = _step_problem(step)
                if why:
                    report.error(
                        MANIFEST, f"waves[{wi}].validation", f"validation command {si + 1} {why}"
                    )
            out.append(WaveSpec(number, ids, steps))
        return tuple(sorted(out, key=lambda w: w.number))
    return tuple(WaveSpec(n, tuple(by_wave[n])) for n in sorted(by_wave))


def _step_problem(step: ValidationStep) -> str | None:
    """Why a validation step cannot run, found now rather than after a wave of agent work."""
    if not step.source.strip():
        return "is empty"
    if step.kind != "python":
        return None
    try:
        compile(step.source, "<validation>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        return f"is not valid Python: line {exc.lineno}: {exc.msg}"
    except ValueError as exc:  # a NUL character in the source
        return f"is not valid Python: {exc}"
    return None


def _check_legacy_counts(model: LegacyManifest, n_tasks: int, n_waves: int, report: Report) -> None:
    index = model.tasks
    if index.total is not None and index.total != n_tasks:
        report.warn(MANIFEST, "tasks.total", f"says {index.total} but there are {n_tasks} tasks")
    if index.waves is not None and index.waves != n_waves:
        report.warn(
            MANIFEST, "tasks.waves", f"says {index.waves} but the tasks form {n_waves} wave(s)"
        )


def validation_steps(value: ValidationField) -> tuple[ValidationStep, ...]:
    """A wave's `validation` as steps; plain strings starting `from `/`import ` are Python."""
    items = value if isinstance(value, list) else ([] if value is None else [value])
    steps = []
    for item in items:
        if isinstance(item, str):
            is_python = item.lstrip().startswith(("from ", "import "))
            steps.append(ValidationStep("python" if is_python else "shell", item))
        elif hasattr(item, "python"):
            steps.append(ValidationStep("python", item.python))
        else:
            steps.append(ValidationStep("shell", item.shell))
    return tuple(steps)


# What the agent is asked to do, and which agent does it: a change to the prompt or to one of
# these makes `--resume` run a task again. Keys that only schedule a task (wave, deps,
# estimate, timeout), name its branch or are informational do not count: re-running a task
# whose work is already merged would pay for the same work twice.
HASHED_OPTIONS = (
    "agent",
    "backend",
    "model",
    "max_turns",
    "permission_mode",
    "approval_mode",
    "sandbox_mode",
)


def content_hash(task_id: str, prompt: str, options: Mapping[str, Any]) -> str:
    """sha256 of what defines the task's work; resume re-runs a task whose hash changed.

    Prefixed with the recipe's version (`same_work` reads it): a report written by a cpo
    that hashed otherwise must not make every merged task run again after an upgrade.
    """
    doc = {"id": task_id, "prompt": prompt, **{k: options.get(k) for k in HASHED_OPTIONS}}
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode("ascii")).hexdigest()
    return HASH_RECIPE + digest


def build_task(
    d: Draft,
    wave: int,
    root_real: str,
    prompt_names: set[str],
    report: Report,
    strict: bool,
    namespace: str | None = None,
) -> TaskSpec | None:
    """The task, its branch named `feature/<namespace>/...` (`feature/...` without one)."""
    o = d.options
    why = ref_name_problem(d.id)
    if why:
        file, where = d.place("id")
        report.error(file, where, f"id {d.id!r} cannot be a git branch or folder name: {why}")
    component = o["component"]
    if component is not None:
        why = ref_name_problem(component) or ref_name_problem(f"{d.id}-{component}")
        if why:
            file, where = d.place("component")
            report.error(
                file,
                where,
                f"component {component!r} cannot be part of the branch "
                f"name feature/{d.id}-{component}: {why}",
            )
    pf_where = (
        (MANIFEST, f"{d.entry_where}.prompt_file")
        if (d.entry is not None and d.entry.prompt_file is not None)
        else d.place("prompt_file")
    )
    choice = resolve_prompt(
        root_real=root_real,
        task_id=d.id,
        prompt_file=o["prompt_file"],
        prompt_file_where=pf_where,
        body=d.file.body if d.file else None,
        task_file=d.file.rel if d.file else None,
        prompt_names=prompt_names,
    )
    if choice.text is None:
        file, where = choice.where if choice.where[0] else d.place("")
        report.error(file, where, f"missing prompt: {choice.error}")
        return None
    # Prompts in the `=== SECTION ===` format are checked for missing sections; with
    # --strict every prompt file must use that format (task bodies are free markdown).
    if uses_sections(choice.text) or (strict and choice.from_file):
        missing = missing_sections(choice.text)
        if missing:
            names = ", ".join(f"=== {m} ===" for m in missing)
            file = choice.source.removesuffix(" (body)")
            msg = f"prompt of {d.id} lacks section(s) {names}"
            (report.error if strict else report.warn)(file, "", msg)
    for i, c in enumerate(o["contracts"] or ()):
        file, where = d.place(f"contracts[{i}]")
        path, why = inside(root_real, c)
        if path is None:
            report.error(file, where, f"contract {why}")
        elif not exists(path):
            report.warn(file, where, f"contract {c} does not exist (yet)")
    scope = parse_scope(d.file.body) if d.file else ()
    return TaskSpec(
        id=d.id,
        wave=wave,
        prompt=choice.text,
        prompt_source=choice.source,
        component=component,
        deps=tuple(d.deps),
        agent=o["agent"],
        backend=o["backend"],
        model=o["model"],
        timeout=o["timeout"],
        estimate=o["estimate"],
        max_turns=o["max_turns"],
        permission_mode=o["permission_mode"],
        approval_mode=o["approval_mode"],
        sandbox_mode=o["sandbox_mode"],
        task_file=d.file.rel if d.file else None,
        contracts=tuple(o["contracts"] or ()),
        skills=tuple(o["skills"] or ()),
        scope=scope,
        sparse=_sparse(d, scope, report) if o["sparse"] else None,
        setup=commands(o["setup"]),
        env=tuple((o["env"] or {}).items()),
        content_hash=content_hash(d.id, choice.text, o),
        branch=task_branch(namespace, d.id, component),
    )
