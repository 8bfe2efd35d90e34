"""The manifest's `execution` block, written into the user's own manifest.json text.

The manifest is the user's file, often written by hand or by another tool: cpo changes
the bytes of its `execution` value (or adds the key at the end) and nothing else — not
the indentation, the key order, the spacing or the final newline.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpo.run.journal import atomic_write

_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class _Member:
    key: str
    key_start: int
    value_start: int
    value_end: int


def _skip(text: str, i: int) -> int:
    match = _SPACE.match(text, i)
    return match.end() if match else i


def _members(text: str) -> tuple[list[_Member], int]:
    """The top-level object's members and the index of its closing brace.

    ValueError when the text is not one JSON object.
    """
    i = _skip(text, 0)
    if text[i : i + 1] != "{":
        raise ValueError("not a JSON object")
    members: list[_Member] = []
    i = _skip(text, i + 1)
    if text[i : i + 1] == "}":
        return members, i
    while True:
        key_start = i
        key, i = _DECODER.raw_decode(text, i)
        i = _skip(text, i)
        if not isinstance(key, str) or text[i : i + 1] != ":":
            raise ValueError("not a JSON object")
        value_start = _skip(text, i + 1)
        _, value_end = _DECODER.raw_decode(text, value_start)
        members.append(_Member(key, key_start, value_start, value_end))
        i = _skip(text, value_end)
        if text[i : i + 1] == "}":
            return members, i
        if text[i : i + 1] != ",":
            raise ValueError("not a JSON object")
        i = _skip(text, i + 1)


def _line_indent(text: str, index: int) -> str | None:
    """The whitespace before `index` on its line, or None when something else precedes it."""
    line_start = text.rfind("\n", 0, index) + 1
    before = text[line_start:index]
    return before if not before.strip() and line_start > 0 else None


def set_execution_block(text: str, block: dict[str, Any]) -> str:
    """`text` (a JSON object) with its `execution` member set to `block`, every other
    byte kept. ValueError when `text` is not a JSON object."""
    members, close = _members(text)
    if not members:
        return text[:close] + '"execution": ' + json.dumps(block, ensure_ascii=False) + text[close:]
    indent = _line_indent(text, members[0].key_start)
    if indent is None:  # the object is on one line: so is the block
        value = json.dumps(block, ensure_ascii=False)
    else:
        # Top-level keys sit one indent deep: their indent is the file's unit.
        value = json.dumps(block, indent=indent, ensure_ascii=False).replace("\n", "\n" + indent)
    existing = [m for m in members if m.key == "execution"]
    if existing:
        m = existing[-1]
        return text[: m.value_start] + value + text[m.value_end :]
    last = members[-1]
    sep = "\n" + indent if indent is not None else " "
    return text[: last.value_end] + "," + sep + '"execution": ' + value + text[last.value_end :]


def write_execution_block(manifest: Path, block: dict[str, Any]) -> bool:
    """Set `block` as the `execution` of the manifest file; False when it could not be (the
    loader accepted it at start: a run never fails over this block)."""
    try:
        text = set_execution_block(manifest.read_text(encoding="utf-8"), block)
    except (OSError, ValueError):
        return False
    atomic_write(manifest, text)
    return True
