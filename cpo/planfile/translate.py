"""A plan file as cpo's `Plan`: one task per row still to do, each stream a chain.

Each task depends on the previous task of its stream still to do and on its `Depends`
tasks still to do (`TASK:COMPLETE` rows are done: their work is on the integration branch
or the base already). Run with the DAG schedule, a task starts from the integration head
once those are merged, so it sees its stream's earlier commits, and streams advance side
by side. Waves are only the depth in that graph (cpo's report shows them).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from cpo.errors import Problem
from cpo.plan.graph import compute_waves
from cpo.plan.model import HASH_RECIPE, Plan, TaskSpec, WaveSpec
from cpo.plan.names import ref_name_problem, task_branch
from cpo.planfile.doc import PlanDoc

DONE = "TASK:COMPLETE"


def output_dir(plan_file: Path) -> Path:
    """Where a plan file's run writes report.json and logs: `<stem>.cpo` next to it."""
    return plan_file.parent / f"{plan_file.stem}.cpo"


def spec_id_of(plan_file: Path) -> str:
    """The plan's name in branch names: its file name's stem, made a valid ref component."""
    name = re.sub(r"[^A-Za-z0-9_.+=@,-]+", "-", plan_file.stem).strip("-.") or "plan"
    return name if ref_name_problem(name) is None else "plan"


def to_plan(doc: PlanDoc, plan_file: Path) -> Plan:
    """The cpo plan of `doc` (a plan without problems: `check_plan` found none)."""
    spec = spec_id_of(plan_file)
    todo = [r for r in doc.rows if r.status.upper() != DONE]
    todo_ids = {r.task_id for r in todo}
    deps = _chained(doc, todo_ids)
    waves = compute_waves(deps, {})
    tasks: dict[str, TaskSpec] = {}
    for row in todo:
        prompt = doc.prompt(row.task_id)
        digest = hashlib.sha256(prompt.encode("utf-8")).hexdigest()
        tasks[row.task_id] = TaskSpec(
            id=row.task_id,
            wave=waves[row.task_id],
            prompt=prompt,
            prompt_source=f"{plan_file.name} (Task {row.task_id})",
            component=None,
            deps=tuple(deps[row.task_id]),
            content_hash=HASH_RECIPE + digest,
            branch=task_branch(spec, row.task_id, None),
        )
    numbers = sorted(set(waves.values()))
    return Plan(
        root=output_dir(plan_file).resolve(),
        spec_id=spec,
        waves=tuple(WaveSpec(n, tuple(t for t in tasks if tasks[t].wave == n)) for n in numbers),
        tasks=tasks,
        name=plan_file.stem,
        manifest_style="none",
        warnings=tuple(_warnings(doc, plan_file)),
    )


def _chained(doc: PlanDoc, todo: set[str]) -> dict[str, list[str]]:
    """Task id -> the previous task to do of its stream, then its Depends still to do."""
    last: dict[str, str] = {}
    deps: dict[str, list[str]] = {}
    for row in doc.rows:
        if row.task_id not in todo:
            continue
        before = [last[row.stream]] if row.stream in last else []
        deps[row.task_id] = before + [d for d in row.depends if d in todo and d not in before]
        last[row.stream] = row.task_id
    return deps


def _warnings(doc: PlanDoc, plan_file: Path) -> list[Problem]:
    return [
        Problem(
            plan_file.name,
            f"line {s.line + 1}",
            f"task {tid}'s section has no **Status**: line",
            "warning",
        )
        for tid, s in doc.sections.items()
        if s.status_line is None
    ]
