"""Did a task stay in its lane: the files it changed against its declared `## Scope`.

A task that declares CREATE or MODIFY paths (cpo.plan.scope) may change those files (a
path may be a glob, or a folder that holds them) and nothing under a BOUNDARY. Files
changed anywhere else are flagged in its record (`out_of_scope`), the run's summary and
`cpo integrate`'s report; with `--strict-scope` (setting `run.strict_scope`) they fail the
task, whose work then stays on its branch, unmerged. A task without CREATE or MODIFY
entries declared no scope: nothing is flagged.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

from cpo.plan.model import ScopeEntry
from cpo.run.report import Report


def _covers(pattern: str, path: str) -> bool:
    pattern = pattern.strip().rstrip("/")
    if not pattern:
        return False
    return path == pattern or path.startswith(pattern + "/") or fnmatchcase(path, pattern)


def out_of_scope(scope: Sequence[ScopeEntry], files: Sequence[str]) -> list[str]:
    """The files in `files` that `scope` does not allow, in their order."""
    allowed = [e.path for e in scope if e.action in ("CREATE", "MODIFY")]
    if not allowed:
        return []
    barred = [e.path for e in scope if e.action == "BOUNDARY"]
    return [
        f
        for f in files
        if any(_covers(b, f) for b in barred) or not any(_covers(a, f) for a in allowed)
    ]


def scope_error(files: Sequence[str]) -> str:
    shown = ", ".join(files[:10]) + (f" and {len(files) - 10} more" if len(files) > 10 else "")
    return f"changed files outside its ## Scope: {shown} (--strict-scope)"


def scope_lines(report: Report) -> list[str]:
    """One line per task that changed files outside its scope (summary and reports)."""
    return [
        f"{t.id}: changed outside its scope: {', '.join(t.out_of_scope)}"
        for t in report.tasks.values()
        if t.out_of_scope
    ]
