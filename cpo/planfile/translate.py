"""A plan file as cpo's `Plan`: one task per row still to do, each stream on one branch.

Every task of a stream has the stream's branch (`stream/<plan>/<stream>`) and worktree
(`<spec folder>/stream-<stream>`), and depends on the previous task of its stream still
to do and on its `Depends` tasks still to do (`TASK:COMPLETE` rows are done and not run
again). The run engine then starts each task where its stream's branch is, so it sees the
earlier tasks' commits; `Streams` tells the run (cpo.commands.streamhooks) which stream
each task is in, what other streams' work to bring in first, and the order in which the
streams are merged at the end.

The whole plan is one wave, in table order as far as `Depends` allows: its validation
(frontmatter `validation:` or `--validate`) runs once, on all streams merged.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from cpo.errors import Problem
from cpo.plan.model import HASH_RECIPE, Plan, TaskSpec, ValidationStep, WaveSpec
from cpo.plan.names import ref_name_problem
from cpo.planfile.doc import PlanDoc
from cpo.planfile.paths import output_dir

DONE = "TASK:COMPLETE"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+=@,-]+")


def spec_id_of(plan_file: Path) -> str:
    """The plan's name in branch names: its file name's stem, made a valid ref component."""
    name = _UNSAFE.sub("-", plan_file.stem).strip("-.") or "plan"
    return name if ref_name_problem(name) is None else "plan"


def stream_ref(stream: str) -> str:
    """A stream's name in its branch and folder: itself when it can be, else made safe
    and told apart by a short hash (`Jetson Nano` -> `Jetson-Nano-3f2a`)."""
    if ref_name_problem(stream) is None:
        return stream
    safe = _UNSAFE.sub("-", stream).strip("-.")[:60] or "stream"
    return f"{safe}-{hashlib.sha1(stream.encode('utf-8')).hexdigest()[:4]}"


@dataclass(frozen=True)
class Streams:
    """A plan file's streams, as the run needs them."""

    order: tuple[str, ...]  # every stream of the table, by first appearance
    of: dict[str, str]  # task id -> its stream, every row
    branches: dict[str, str]  # stream -> its branch
    # Task id -> the tasks of other streams it waits for (its Depends), done ones too.
    depends: dict[str, tuple[str, ...]]

    def tasks(self, stream: str) -> list[str]:
        return [t for t, s in self.of.items() if s == stream]


def plan_streams(doc: PlanDoc, spec: str) -> Streams:
    of = {row.task_id: row.stream for row in doc.rows}
    order = tuple(dict.fromkeys(of.values()))
    return Streams(
        order=order,
        of=of,
        branches={s: f"stream/{spec}/{stream_ref(s)}" for s in order},
        depends={
            row.task_id: tuple(d for d in row.depends if of.get(d, row.stream) != row.stream)
            for row in doc.rows
        },
    )


def to_plan(doc: PlanDoc, plan_file: Path, validation: tuple[ValidationStep, ...] = ()) -> Plan:
    """The cpo plan of `doc` (a plan without problems: `check_plan` found none)."""
    spec = spec_id_of(plan_file)
    streams = plan_streams(doc, spec)
    todo = [r for r in doc.rows if r.status.upper() != DONE]
    deps = _chained(doc, {r.task_id for r in todo})
    tasks: dict[str, TaskSpec] = {}
    for task_id in _table_order(deps):
        row = doc.row(task_id)
        prompt = doc.prompt(task_id)
        digest = hashlib.sha256(prompt.encode("utf-8")).hexdigest()
        tasks[task_id] = TaskSpec(
            id=task_id,
            wave=1,
            prompt=prompt,
            prompt_source=f"{plan_file.name} (Task {task_id})",
            deps=tuple(deps[task_id]),
            content_hash=HASH_RECIPE + digest,
            branch=streams.branches[row.stream],
            worktree=f"stream-{stream_ref(row.stream)}",
        )
    return Plan(
        root=output_dir(plan_file).resolve(),
        spec_id=spec,
        waves=(WaveSpec(1, tuple(tasks), validation),) if tasks else (),
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


def _table_order(deps: dict[str, list[str]]) -> list[str]:
    """The tasks in table order, except that a task comes after what it depends on (a
    `Depends` may name a later row); the engine reads a wave's order as a topological one."""
    placed: list[str] = []
    left = list(deps)
    while left:
        ready = next(t for t in left if all(d in placed for d in deps[t]))
        placed.append(ready)
        left.remove(ready)
    return placed


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
