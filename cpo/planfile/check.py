"""What is wrong with a plan file: one `Problem` per problem, each with its line number."""

from __future__ import annotations

from cpo.errors import Problem
from cpo.plan.graph import find_cycles
from cpo.plan.names import ref_name_problem
from cpo.planfile.doc import STATUSES, PlanDoc
from cpo.suggest import did_you_mean


def stream_deps(doc: PlanDoc) -> dict[str, list[str]]:
    """Task id -> what it waits for: the previous task of its stream, then its Depends."""
    deps: dict[str, list[str]] = {}
    last: dict[str, str] = {}
    for row in doc.rows:
        before = [last[row.stream]] if row.stream in last else []
        deps.setdefault(row.task_id, before + [d for d in row.depends if d not in before])
        last[row.stream] = row.task_id
    return deps


def check_plan(doc: PlanDoc, name: str) -> list[Problem]:
    """Every problem of the plan `doc` (file `name`), in line order."""

    def at(line: int, message: str) -> Problem:
        return Problem(name, f"line {line + 1}", message)

    if doc.header_line is None:
        return [
            Problem(
                name,
                "",
                "no Progress Tracking table: add one with at least the columns "
                "| Task | Status | (and Stream, Name, Date, Depends if wanted)",
            )
        ]
    problems = [at(line, message) for line, message in doc.problems]
    seen: dict[str, int] = {}
    ids = [r.task_id for r in doc.rows]
    for row in doc.rows:
        tid = row.task_id
        if not tid:
            problems.append(at(row.line, "the row has no task id in its Task column"))
            continue
        if tid in seen:
            problems.append(at(row.line, f"task {tid} is already in the table (line {seen[tid]})"))
        seen.setdefault(tid, row.line + 1)
        bad = ref_name_problem(tid)
        if bad:
            problems.append(at(row.line, f"task id {tid!r} {bad}: it names a git branch"))
        if row.status.upper() not in STATUSES:
            problems.append(
                at(
                    row.line,
                    f"{tid}: unknown status {row.status!r}: use one of {', '.join(STATUSES)}",
                )
            )
        if tid not in doc.sections:
            problems.append(at(row.line, f"{tid} has no section: add a heading '## Task {tid}'"))
        for dep in row.depends:
            if dep not in ids:
                problems.append(
                    at(
                        row.line,
                        f"{tid} depends on {dep!r}, which is not a task of the table"
                        + did_you_mean(dep, ids),
                    )
                )
    for section in [*doc.sections.values(), *doc.duplicate_sections]:
        if section.task_id not in seen:
            problems.append(
                at(section.line, f"section of task {section.task_id} has no row in the table")
            )
    for section in doc.duplicate_sections:
        first = doc.sections[section.task_id].line + 1
        problems.append(
            at(section.line, f"a second section for task {section.task_id} (line {first})")
        )
    for cycle in find_cycles(stream_deps(doc)):
        line = doc.row(cycle[0]).line
        problems.append(at(line, "dependency cycle: " + " -> ".join(cycle)))
    return sorted(problems, key=lambda p: int(p.field.split()[-1]) if p.field else 0)
