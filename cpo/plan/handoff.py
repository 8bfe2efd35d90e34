"""What a dependent is told about its dependencies' work: a bounded prompt section.

A task that depends on others starts on top of their merged work, but its prompt was
written before that work existed. So cpo appends "What your dependencies built" to it:
per dependency the summary from its completion marker, the files it changed and git's
diff stat, within a size limit (setting `run.handoff_limit`; off with `handoff: false`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

HEADING = "## What your dependencies built"
_INTRO = (
    "These tasks ran before yours; their work is merged into your starting point. "
    "Build on it rather than writing it again."
)


@dataclass(frozen=True)
class DepWork:
    """One dependency's finished work, as its record has it."""

    task_id: str
    summary: str | None
    files: tuple[str, ...]
    diff_stat: str | None


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)].rstrip() + "…"


def _files_line(files: Sequence[str], budget: int) -> str:
    """`Files changed (N): a, b … and K more`: as many names as fit in `budget`."""
    head = f"Files changed ({len(files)}): "
    if not files:
        return head + "none"
    shown: list[str] = []
    for name in files:
        more = len(files) - len(shown) - 1
        names = ", ".join([*shown, name])
        if shown and len(head) + len(names) + len(f" … and {more} more") > budget:
            break
        shown.append(name)
    rest = len(files) - len(shown)
    return head + ", ".join(shown) + (f" … and {rest} more" if rest else "")


def _block(dep: DepWork, budget: int) -> str:
    lines = [f"### {dep.task_id}"]
    if dep.diff_stat:
        lines.append(f"Diff: {dep.diff_stat.strip()}")
    left = budget - sum(len(line) + 1 for line in lines)
    files = _files_line(dep.files, max(left // 2, 60))
    said = (dep.summary or "").strip() or "none"
    lines += ["Summary: " + _clip(said, max(left - len(files) - 10, 40)), files]
    return "\n".join(lines)


def handoff_section(deps: Sequence[DepWork], limit: int) -> str:
    """The section for a task's prompt; "" without dependencies. At most `limit`
    characters: each dependency gets an equal share, its summary and file list cut."""
    if not deps:
        return ""
    share = max((limit - len(HEADING) - len(_INTRO) - 4) // len(deps), 80)
    text = "\n\n".join([HEADING, _INTRO, *(_block(d, share) for d in deps)])
    return _clip(text, limit)


def with_handoff(prompt: str, section: str) -> str:
    """The prompt with the section appended (unchanged when there is none)."""
    return f"{prompt.rstrip()}\n\n{section}\n" if section else prompt
