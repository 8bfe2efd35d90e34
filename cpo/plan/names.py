"""Task ids and spec ids become git branch names and folder names: check they can.

The rules are those of `git check-ref-format` for one ref component, plus what a
folder name needs (no `/`) and what a command line needs (no leading `-`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Fast path: anything made only of these characters, not starting with `-` or `.`,
# is valid unless it hits one of the sequence rules below.
_SIMPLE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=@,-]*")
_FORBIDDEN_CHARS = set(" ~^:?*[\\/") | {chr(c) for c in range(0x20)} | {"\x7f"}
MAX_LENGTH = 200  # folder names are limited to 255 bytes; leave room for suffixes


def ref_name_problem(name: str) -> str | None:
    """Why `name` cannot be a git ref component and a folder name, or None when it can."""
    if not name:
        return "is empty"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_LENGTH:
        return f"is longer than {MAX_LENGTH} bytes"
    if not _SIMPLE.fullmatch(name):
        bad = sorted({c for c in name if c in _FORBIDDEN_CHARS})
        if bad:
            return "contains " + ", ".join(repr(c) for c in bad)
        if any(0xD800 <= ord(c) <= 0xDFFF for c in name):
            return "contains an invalid unicode character"
        if name.startswith("-"):
            return "starts with '-'"
        if name.startswith("."):
            return "starts with '.'"
    if ".." in name:
        return "contains '..'"
    if name.endswith(".lock"):
        return "ends with '.lock'"
    if name.endswith("."):
        return "ends with '.'"
    if "@{" in name or name == "@":
        return "contains '@{' or is '@'"
    return None


def task_branch(spec_id: str | None, task_id: str, component: str | None) -> str:
    """`feature/<spec>/<id>` (`feature/<id>` without a spec id), with `-<component>`
    appended when the id does not already end in it."""
    name = task_id
    if component and not task_id.endswith(f"-{component}"):
        name = f"{task_id}-{component}"
    return f"feature/{spec_id}/{name}" if spec_id else f"feature/{name}"


def ref_clash(branch: str, existing: Iterable[str]) -> str | None:
    """An existing branch that keeps git from creating `branch`: a ref cannot also be a
    folder of refs, so `feature/TS-1` blocks `feature/TS-1/task-001` and the other way round."""
    names = set(existing)
    parts = branch.split("/")
    for i in range(1, len(parts)):
        if "/".join(parts[:i]) in names:
            return "/".join(parts[:i])
    return next((b for b in sorted(names) if b.startswith(branch + "/")), None)
