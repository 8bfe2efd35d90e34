"""Reading task files: YAML frontmatter between `---` lines, then a markdown body.

The frontmatter is split here rather than by python-frontmatter so that YAML errors
can be reported with their line and column in the task file itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from cpo.errors import Problem

try:  # libyaml is ~10x faster; a 5,000-task directory is mostly YAML parsing
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader


@dataclass(frozen=True)
class RawTaskFile:
    rel: str  # path relative to the parallel directory
    data: bytes  # the file's bytes, for the content hash
    meta: dict[str, Any]
    body: str


def yaml_error(rel: str, exc: Exception, line_offset: int = 0) -> Problem:
    """One line for a YAML error, with the line and column in the file."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        what = exc.problem or "invalid YAML"
        if exc.context:
            what = f"{exc.context}, {what}"
        return Problem(
            rel, "",
            f"line {mark.line + 1 + line_offset}, column {mark.column + 1}: invalid YAML: {what}",
        )
    if isinstance(exc, RecursionError):
        return Problem(rel, "", "invalid YAML: nested too deeply")
    return Problem(rel, "", f"invalid YAML: {exc}")


def split_frontmatter(rel: str, text: str) -> tuple[str, str, int] | Problem:
    """(yaml text, body, line number of the first yaml line - 1) or a Problem."""
    lines = text.splitlines(keepends=True)
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    if start == len(lines) or lines[start].rstrip() != "---":
        return Problem(
            rel, "",
            "no YAML frontmatter: a task file must start with a '---' line, then 'id: ...', "
            "then '---'",
        )
    for end in range(start + 1, len(lines)):
        if lines[end].rstrip() in ("---", "..."):
            return "".join(lines[start + 1 : end]), "".join(lines[end + 1 :]), start + 1
    return Problem(
        rel, "", f"line {start + 1}: frontmatter is not closed: add a '---' line after it"
    )


def parse_task_file(rel: str, data: bytes, text: str) -> RawTaskFile | Problem:
    split = split_frontmatter(rel, text)
    if isinstance(split, Problem):
        return split
    fm, body, offset = split
    try:
        meta = yaml.load(fm, Loader=_Loader)  # a safe loader (CSafeLoader/SafeLoader)
    except (yaml.YAMLError, RecursionError) as exc:
        return yaml_error(rel, exc, offset)
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        return Problem(
            rel, "", f"frontmatter must be a mapping of keys (id: ..., deps: ...), "
            f"not a {type(meta).__name__}",
        )
    bad = [k for k in meta if not isinstance(k, str)]
    if bad:
        return Problem(rel, repr(bad[0])[:60], "frontmatter keys must be strings")
    return RawTaskFile(rel=rel, data=data, meta=meta, body=body)
