"""Joining manifest entries and task files into one checked `Plan` (README, The parallel directory).

A task may be described by a manifest entry, a task file, or both; where both give a
value they must agree. Ids from task files are canonical; a manifest entry may also
name a task by `<id>-<component>` or by its file name.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cpo.plan.graph import compute_waves, find_cycles, wave_order_violations
from cpo.plan.manifest import MANIFEST, Report
from cpo.plan.models import CpoManifest, Frontmatter, ManifestTask
from cpo.plan.taskfile import RawTaskFile
from cpo.suggest import did_you_mean

# Per-task options that manifest entry and frontmatter may both set; both must agree.
OPTION_FIELDS = (
    "component",
    "agent",
    "backend",
    "model",
    "timeout",
    "estimate",
    "max_turns",
    "permission_mode",
    "approval_mode",
    "sandbox_mode",
    "prompt_file",
    "skills",
    "contracts",
    "setup",
    "env",
    "sparse",
)


@dataclass
class Draft:
    """One task while it is being joined (mutable only here)."""

    id: str
    file: RawTaskFile | None = None
    fm: Frontmatter | None = None
    entry: ManifestTask | None = None
    entry_where: str = ""
    manifest_wave: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    deps: list[str] = field(default_factory=list)

    def place(self, name: str) -> tuple[str, str]:
        """(file, field) where this task's `name` is written, for messages."""
        if self.file is not None:
            return self.file.rel, name
        return MANIFEST, f"{self.entry_where}.{name}" if name else self.entry_where


def index_files(
    task_files: Sequence[tuple[RawTaskFile, Frontmatter]], report: Report
) -> tuple[dict[str, Draft], dict[str, str]]:
    by_id: dict[str, Draft] = {}
    for raw, fm in task_files:
        other = by_id.get(fm.id)
        if other is not None and other.file is not None:
            report.error(
                raw.rel,
                "id",
                f"duplicate id {fm.id!r}: {other.file.rel} has it too; ids must be unique",
            )
            continue
        by_id[fm.id] = Draft(id=fm.id, file=raw, fm=fm)
    aliases: dict[str, str] = {}
    for d in by_id.values():
        assert d.file is not None and d.fm is not None
        names = [Path(d.file.rel).stem, os.path.normpath(d.file.rel)]
        if d.fm.component:
            names.append(f"{d.id}-{d.fm.component}")
        for name in names:
            if name not in by_id:
                aliases.setdefault(name, d.id)
    return by_id, aliases


def join_manifest(
    model: CpoManifest,
    by_id: dict[str, Draft],
    aliases: dict[str, str],
    report: Report,
) -> list[Draft]:
    """Manifest entries matched to task files, in manifest order."""
    order: list[Draft] = []
    manifest_only: dict[str, Draft] = {}
    for wi, wave in enumerate(model.waves):
        number = wave.number or wi + 1
        for ti, entry in enumerate(wave.tasks):
            where = f"waves[{wi}].tasks[{ti}]"
            cid = entry.id if entry.id in by_id else aliases.get(entry.id)
            if entry.task_file:
                fid = aliases.get(os.path.normpath(entry.task_file))
                fid = (
                    fid
                    if fid is not None
                    else (
                        next(
                            (
                                i
                                for i, d in by_id.items()
                                if d.file and d.file.rel == os.path.normpath(entry.task_file)
                            ),
                            None,
                        )
                    )
                )
                if fid is not None and cid is not None and fid != cid:
                    report.error(
                        MANIFEST,
                        f"{where}.id",
                        f"id {entry.id!r} disagrees with {entry.task_file}, whose id is {fid!r}",
                    )
                cid = fid if fid is not None else cid
            draft = by_id.get(cid) if cid is not None else None
            if draft is None:
                if entry.id in manifest_only:
                    first = manifest_only[entry.id]
                    report.error(
                        MANIFEST,
                        f"{where}.id",
                        f"duplicate id {entry.id!r}: "
                        f"{first.entry_where} has it too; ids must be unique",
                    )
                    continue
                draft = manifest_only[entry.id] = Draft(id=entry.id)
            elif draft.entry is not None:
                report.error(
                    MANIFEST,
                    f"{where}.id",
                    f"duplicate id {entry.id!r}: "
                    f"{draft.entry_where} names the same task; list it once",
                )
                continue
            draft.entry, draft.entry_where, draft.manifest_wave = entry, where, number
            if entry.wave is not None and entry.wave != number:
                report.error(
                    MANIFEST,
                    f"{where}.wave",
                    f"wave {entry.wave} disagrees with the enclosing wave {number}",
                )
            order.append(draft)
    for d in by_id.values():
        if d.entry is None and d.file is not None:
            report.error(
                d.file.rel,
                "id",
                f"task {d.id!r} is in no wave of {MANIFEST}: add it to a wave there "
                "or delete the file",
            )
    return order


def merge_options(d: Draft, report: Report) -> None:
    for name in OPTION_FIELDS:
        m = getattr(d.entry, name) if d.entry is not None else None
        f = getattr(d.fm, name) if d.fm is not None else None
        if m is not None and f is not None and m != f:
            assert d.file is not None
            report.error(
                MANIFEST,
                f"{d.entry_where}.{name}",
                f"{m!r} disagrees with {d.file.rel}: {name}: {f!r}; make them agree "
                "or set it in one place only",
            )
        d.options[name] = m if m is not None else f


def _resolve(name: str, by_id: dict[str, Any], aliases: dict[str, str]) -> str | None:
    return name if name in by_id else aliases.get(name)


def _unknown(what: str, name: str, ids: Sequence[str], self_id: str) -> str:
    hint = did_you_mean(name, (i for i in ids if i != self_id)) or "; no task has that id"
    return f"unknown {what} {name!r}{hint}"


def join_deps(drafts: dict[str, Draft], aliases: dict[str, str], report: Report) -> None:
    ids = list(drafts)
    for d in drafts.values():
        sources = []
        if d.entry is not None and d.entry.deps is not None:
            sources.append((MANIFEST, f"{d.entry_where}.deps", d.entry.deps))
        if d.fm is not None and d.fm.deps is not None and d.file is not None:
            sources.append((d.file.rel, "deps", d.fm.deps))
        resolved: list[set[str]] = []
        for file, where, names in sources:
            got = set()
            for name in names:
                cid = _resolve(name, drafts, aliases)
                if cid is None:
                    report.error(file, where, _unknown("dependency", name, ids, d.id))
                    continue
                got.add(cid)
                if cid not in d.deps:
                    d.deps.append(cid)
            resolved.append(got)
        if len(resolved) == 2 and resolved[0] != resolved[1]:
            report.error(
                MANIFEST,
                f"{d.entry_where}.deps",
                f"{sorted(resolved[0])} disagrees with {sources[1][0]}: deps: "
                f"{sorted(resolved[1])}; make them agree or set deps in one place only",
            )
    for d in drafts.values():
        blocks = (
            [(MANIFEST, f"{d.entry_where}.blocks", d.entry.blocks)]
            if (d.entry is not None and d.entry.blocks)
            else []
        )
        if d.fm is not None and d.fm.blocks and d.file is not None:
            blocks.append((d.file.rel, "blocks", d.fm.blocks))
        for file, where, names in blocks:
            for name in names:
                cid = _resolve(name, drafts, aliases)
                if cid is None:
                    report.error(file, where, _unknown("task", name, ids, d.id))
                elif d.id not in drafts[cid].deps:
                    report.error(
                        file,
                        where,
                        f"{d.id} blocks {cid}, but {cid} does not depend on {d.id}: add "
                        f"{d.id} to the deps of {cid} or remove {cid} from blocks",
                    )


def assign_waves(drafts: dict[str, Draft], report: Report) -> dict[str, int]:
    fixed: dict[str, int] = {}
    for d in drafts.values():
        fw = d.fm.wave if d.fm is not None else None
        if d.manifest_wave is not None and fw is not None and fw != d.manifest_wave:
            assert d.file is not None
            report.error(
                MANIFEST,
                f"{d.entry_where}",
                f"{d.id} is in wave {d.manifest_wave} here but {d.file.rel} says wave: {fw}",
            )
        wave = d.manifest_wave if d.manifest_wave is not None else fw
        if wave is not None:
            fixed[d.id] = wave
    deps = {d.id: d.deps for d in drafts.values()}
    cyclic: set[str] = set()
    for cycle in find_cycles(deps):
        cyclic.update(cycle)
        file, where = drafts[cycle[0]].place("deps")
        chain = " -> ".join(cycle)
        message = (
            f"{cycle[0]} depends on itself"
            if len(cycle) == 2
            else f"dependency cycle: {chain} (each needs the next)"
        )
        report.error(file, where, f"{message}; remove one of these dependencies")
    acyclic = {t: [x for x in ds if x not in cyclic] for t, ds in deps.items() if t not in cyclic}
    waves = compute_waves(acyclic, fixed)
    for t in cyclic:
        waves[t] = fixed.get(t, 1)
    for t, dep in wave_order_violations(acyclic, waves):
        file, where = drafts[t].place("wave" if drafts[t].file else "")
        report.error(
            file,
            where,
            f"{t} is in wave {waves[t]} but depends on {dep} in wave {waves[dep]}: "
            f"a task's wave must be after its dependencies' (move {t} to wave "
            f"{waves[dep] + 1} or later)",
        )
    return waves
