"""Reading task files: YAML frontmatter between `---` lines, then a markdown body.

python-frontmatter's YAML handler finds and splits the frontmatter; the YAML is read with
PyYAML's C loader when PyYAML has one (a 5,000-task directory is mostly YAML parsing).
Problems keep the line and column in the task file itself, and YAML aliases are bounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from frontmatter.default_handlers import YAMLHandler

from cpo.errors import Problem

# libyaml is ~10x faster than the pure-Python loader; both are safe loaders.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Aliases let a few lines of YAML stand for billions of values ("billion laughs"): the
# load itself is quick (an alias is a shared reference) but anything that walks the result,
# validating or quoting it in a message, then runs for minutes. Frontmatter is a few keys;
# one that stands for more values than this is refused before anything walks it.
MAX_VALUES = 10_000


class _TaskYAML(YAMLHandler):
    def load(self, fm: str, **kwargs: object) -> Any:
        kwargs.setdefault("Loader", _LOADER)
        return super().load(fm, **kwargs)


_HANDLER = _TaskYAML()


@dataclass(frozen=True)
class RawTaskFile:
    rel: str  # path relative to the parallel directory
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


def expands_past(value: Any, limit: int) -> bool:
    """Whether `value`, with every shared reference counted each time it is reached, holds
    more than `limit` values. Stops counting at the limit, so it is quick on a bomb."""
    stack = [value]
    count = 0
    while stack:
        item = stack.pop()
        count += 1
        if count > limit:
            return True
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_task_file(rel: str, text: str) -> RawTaskFile | Problem:
    # Blank lines before the opening `---` are allowed (python-frontmatter strips them too).
    start = len(text) - len(text.lstrip())
    head = text[start:]
    opening = _HANDLER.FM_BOUNDARY.match(head) if _HANDLER.FM_BOUNDARY else None
    if opening is None:
        return Problem(
            rel,
            "",
            "no YAML frontmatter: a task file must start with a '---' line, then 'id: ...', "
            "then '---'",
        )
    try:
        fm, content = _HANDLER.split(head)
    except ValueError:
        line = text.count("\n", 0, start) + 1
        return Problem(
            rel, "", f"line {line}: frontmatter is not closed: add a '---' line after it"
        )
    # YAML marks count lines from the start of `fm`, which begins on the opening line.
    offset = text.count("\n", 0, start + opening.end())
    try:
        meta = _HANDLER.load(fm)
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        # ValueError: a scalar libyaml accepts but Python cannot build (a huge integer)
        return yaml_error(rel, exc, offset)
    if "*" in fm and expands_past(meta, MAX_VALUES):
        return Problem(
            rel,
            "",
            f"frontmatter: YAML aliases (*name) expand to more than {MAX_VALUES:,} values; "
            "write the values out instead",
        )
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
    # The body starts on the line after the closing `---`.
    return RawTaskFile(rel=rel, meta=meta, body=content.removeprefix("\n"))
