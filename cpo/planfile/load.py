"""`load_plan_file`: read, parse and check a plan file into cpo's `Plan`."""

from __future__ import annotations

from pathlib import Path

from cpo.errors import PlanError, Problem, UsageError
from cpo.plan.assemble import validation_steps
from cpo.plan.model import Plan, ValidationStep
from cpo.plan.taskfile import parse_task_file
from cpo.planfile.check import check_plan
from cpo.planfile.doc import PlanDoc, parse_plan
from cpo.planfile.translate import to_plan
from cpo.planfile.writer import read_plan_text

# Frontmatter keys of a plan file that cpo reads; others are the plan's own business.
VALIDATION_KEY = "validation"


def read_plan_doc(path: Path) -> PlanDoc:
    if not path.is_file():
        raise UsageError(f"{path}: no such plan file")
    return parse_plan(read_plan_text(path)[1])


def plan_validation(
    text: str, name: str, flag: str | None = None
) -> tuple[tuple[ValidationStep, ...], list[Problem]]:
    """The plan's validation: `--validate CMD` (`flag`), else its frontmatter's
    `validation:` (a string: a shell command, or Python source starting with `from ` or
    `import `, as a wave's in a parallel directory); and the frontmatter's problems."""
    if not text.startswith("---"):
        return validation_steps(flag or None), []
    parsed = parse_task_file(name, text)
    if isinstance(parsed, Problem):
        return validation_steps(flag), [parsed]
    value = parsed.meta.get(VALIDATION_KEY)
    if value is not None and not isinstance(value, str):
        problem = Problem(
            name,
            VALIDATION_KEY,
            f"must be a string (one shell command, or Python source starting with 'from' "
            f"or 'import'), not a {type(value).__name__}",
        )
        return validation_steps(flag), [problem]
    return validation_steps(flag if flag is not None else (value or None)), []


def load_plan_file(path: Path, validate: str | None = None) -> Plan:
    """The checked plan; `validate` (from `--validate`) overrides the frontmatter's
    validation. Raises UsageError (cannot read) or PlanError (every problem)."""
    path = path.resolve()
    doc = read_plan_doc(path)
    validation, problems = plan_validation(doc.text, path.name, validate)
    problems = [*problems, *check_plan(doc, path.name)]
    if problems:
        raise PlanError(problems)
    return to_plan(doc, path, validation)
