"""`load_plan_file`: read, parse and check a plan file into cpo's `Plan`."""

from __future__ import annotations

from pathlib import Path

from cpo.errors import PlanError, UsageError
from cpo.plan.model import Plan
from cpo.planfile.check import check_plan
from cpo.planfile.doc import PlanDoc, parse_plan
from cpo.planfile.translate import to_plan
from cpo.planfile.writer import read_plan_text


def is_plan_file(path: Path) -> bool:
    """Whether `path` names a plan file (a Markdown file) rather than a parallel directory."""
    return path.suffix.lower() in (".md", ".markdown") and not path.is_dir()


def read_plan_doc(path: Path) -> PlanDoc:
    if not path.is_file():
        raise UsageError(f"{path}: no such plan file")
    return parse_plan(read_plan_text(path)[1])


def load_plan_file(path: Path) -> Plan:
    """The checked plan. Raises UsageError (cannot read) or PlanError (every problem)."""
    path = path.resolve()
    doc = read_plan_doc(path)
    problems = check_plan(doc, path.name)
    if problems:
        raise PlanError(problems)
    return to_plan(doc, path)
