"""`load_plan`: read and check a parallel directory into a frozen `Plan`.

The top of `cpo.plan`: it reads the manifest and task files (`manifest`, `taskfile`),
validates them (`models`) and joins them (`assemble`, `join`). Every problem is reported
at once as a `PlanError`.
"""

from __future__ import annotations

import os
from pathlib import Path

from cpo.errors import PlanError
from cpo.plan.assemble import build_plan
from cpo.plan.manifest import (
    Report,
    check_directory,
    read_manifest,
    read_task_files,
    task_file_paths,
    validate_model,
)
from cpo.plan.model import Plan
from cpo.plan.models import Frontmatter
from cpo.plan.paths import clear_cache


def load_plan(path: Path, *, strict: bool = False) -> Plan:
    """Read and check a parallel directory. Raises UsageError (cannot read) or PlanError."""
    root = check_directory(path)
    clear_cache()
    root_real = os.path.realpath(root)
    report = Report()
    manifest = read_manifest(root, root_real, report)
    refs = task_file_paths(root, manifest)
    raw_files = read_task_files(root_real, refs, report)
    task_files = []
    for raw in raw_files:
        fm = validate_model(Frontmatter, raw.meta, raw.rel, "", report)
        if fm is not None:
            task_files.append((raw, fm))
    plan = build_plan(
        root=root,
        root_real=root_real,
        manifest=manifest,
        task_files=task_files,
        report=report,
        strict=strict,
    )
    if report.problems or plan is None:
        raise PlanError(report.problems, report.warnings)
    return plan
