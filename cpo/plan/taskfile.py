"""Reading task files: YAML frontmatter between `---` lines, then a markdown body.

The frontmatter is split here rather than by python-frontmatter so that YAML errors
can be reported with their line and column in the task file itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from cpo.errors import Problem

try:  # libyaml is ~10x faster; a 5,000-task directory is mostly YAML parsing
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader


# The usual frontmatter is flat `key: value` / `key: [a, b]` lines of plain words and small
# integers. PyYAML builds each document in Python (~1 ms); for this subset a line parser
# gives the identical result ~20x faster, and anything else goes to PyYAML.
_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*):(?: +(.*?))? *")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_./@+-]*(?::[A-Za-z0-9_./@+-]+)*")
_NOT_PLAIN = re.compile(r"[^\x20-\x7e\n]")
_INT = re.compile(r"0|[1-9][0-9]{0,8}")
# Words PyYAML (YAML 1.1) reads as booleans or null rather than strings.
_SPECIAL = {
    w
    for base in ("yes", "no", "true", "false", "on", "off", "null", "y", "n")
    for w in (base, base.capitalize(), base.upper())
}


def _fast_scalar(text: str) -> tuple[bool, Any]:
    if _INT.fullmatch(text):
        return True, int(text)
    if _WORD.fullmatch(text) and text not in _SPECIAL:
        return True, text
    return False, None


def fast_frontmatter(text: str) -> dict[str, Any] | None:
    """The frontmatter as PyYAML would read it, or None when it is outside the simple subset."""
    if _NOT_PLAIN.search(text):
        return None  # tabs, CR, control or non-ASCII characters: let PyYAML decide
    out: dict[str, Any] = {}
    for line in text.split("\n"):
        if not line:
            continue
        if line.startswith("#"):
            continue
        if not line.strip(" "):
            return None  # whitespace-only lines may belong to a block value
        m = _LINE.fullmatch(line)
        if m is None:
            return None
        key, value = m.group(1), m.group(2)
        if key in _SPECIAL:
            return None
        if value is None:
            return None  # `key:` alone: null, or a block value on the next lines
        if value.startswith("[") and value.endswith("]"):
            inner = value[1:-1].strip(" ")
            items: list[Any] = []
            if inner:
                for part in inner.split(","):
                    ok, item = _fast_scalar(part.strip(" "))
                    if not ok or ":" in part:  # `a:b` inside [...] differs by YAML version
                        return None
                    items.append(item)
            out[key] = items
            continue
        ok, scalar = _fast_scalar(value)
        if not ok:
            return None
        out[key] = scalar
    return out


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
            rel,
            "",
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
            rel,
            "",
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
    fast = fast_frontmatter(fm)
    if fast is not None:
        return RawTaskFile(rel=rel, data=data, meta=fast, body=body)
    try:
        meta = yaml.load(fm, Loader=_Loader)  # a safe loader (CSafeLoader/SafeLoader)
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        # ValueError: a scalar libyaml accepts but Python cannot build (a huge integer)
        return yaml_error(rel, exc, offset)
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        return Problem(
            rel,
            "",
            f"frontmatter must be a mapping of keys (id: ..., deps: ...), "
            f"not a {type(meta).__name__}",
        )
    bad = [k for k in meta if not isinstance(k, str)]
    if bad:
        return Problem(rel, repr(bad[0])[:60], "frontmatter keys must be strings")
    return RawTaskFile(rel=rel, data=data, meta=meta, body=body)
