"""The `## Scope` section of a task file, and the rules that keep parallel tasks apart.

    ## Scope
    CREATE: apps/users/models.py, apps/users/tests/*.py
    MODIFY: config/urls.py, apps/core/views.py::View.get
    BOUNDARY: apps/orders/*

Entries may also be bullet lists under an `ACTION:` line. Rules (README, Scope): a path is
created by at most one task; an unscoped MODIFY of a path appears in one task per wave;
scoped MODIFYs of one file in one wave must name symbols that do not nest.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast

from cpo.errors import Problem
from cpo.plan.model import ScopeEntry

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_ACTION = re.compile(r"^[-*+]?\s*\**\s*(CREATE|MODIFY|BOUNDARY)\s*\**\s*:\s*\**\s*(.*)$", re.I)
_BULLET = re.compile(r"^[-*+]\s+(.*)$")
_TRAILING_NOTE = re.compile(r"\s+\(.*\)\s*$")

Action = Literal["CREATE", "MODIFY", "BOUNDARY"]


def scope_section(body: str) -> str | None:
    """The text under the `## Scope` heading, up to the next heading of the same or higher level."""
    if "scope" not in body.lower():
        return None
    lines = body.splitlines()
    for i, line in enumerate(lines):
        m = _HEADING.match(line)
        if m and m.group(2).strip().lower() == "scope":
            level = len(m.group(1))
            out: list[str] = []
            for rest in lines[i + 1 :]:
                h = _HEADING.match(rest)
                if h and len(h.group(1)) <= level:
                    break
                out.append(rest)
            return "\n".join(out)
    return None


def _split_paths(text: str) -> list[str]:
    text = _TRAILING_NOTE.sub("", text.strip())
    paths = []
    for part in text.split(","):
        p = part.strip().strip("`\"'").strip()
        if p.startswith("**") and p.endswith("**") and len(p) > 4:
            p = p[2:-2].strip()
        if p.startswith("./"):
            p = p[2:]
        if p:
            paths.append(p)
    return paths


def _entry(action: Action, raw: str) -> ScopeEntry:
    path, sep, symbol = raw.partition("::")
    name = symbol.strip() if sep else ""
    return ScopeEntry(action=action, path=path.strip(), symbol=name or None)


def parse_scope(body: str) -> tuple[ScopeEntry, ...]:
    """Scope entries of a task body, in order; a body without a Scope section has none."""
    section = scope_section(body)
    if section is None:
        return ()
    entries: list[ScopeEntry] = []
    current: Action | None = None
    for line in section.splitlines():
        stripped = line.strip()
        m = _ACTION.match(stripped)
        if m:
            current = cast(Action, m.group(1).upper())
            entries.extend(_entry(current, p) for p in _split_paths(m.group(2)))
            continue
        b = _BULLET.match(stripped)
        if b and current is not None:
            entries.extend(_entry(current, p) for p in _split_paths(b.group(1)))
        elif not stripped:
            continue
        else:
            current = None  # prose ends a bullet list
    return tuple(e for e in entries if e.path)


@dataclass(frozen=True)
class ScopedTask:
    """What the conflict rules need to know about one task."""

    id: str
    wave: int
    file: str  # where its scope was written, for messages
    scope: tuple[ScopeEntry, ...]


def _ancestors(symbol: str) -> list[str]:
    """`A.b.c` -> [`A`, `A.b`]: the names a symbol is nested in."""
    parts = symbol.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _first_other(tasks: dict[str, ScopedTask], task_id: str) -> ScopedTask | None:
    return next((t for i, t in tasks.items() if i != task_id), None)


def _modify_conflicts(
    wave: int, path: str, users: list[tuple[ScopedTask, str | None]]
) -> list[Problem]:
    """Conflicts among the MODIFYs of one file in one wave, in linear time: each symbol is
    looked up against earlier symbols, their ancestors and their descendants."""
    problems: list[Problem] = []
    names: dict[str, ScopedTask] = {}  # symbol -> first task naming it
    inner: dict[str, tuple[ScopedTask, str]] = {}  # ancestor -> (task, descendant symbol)
    reported: set[tuple[str, str]] = set()

    def clash(task: ScopedTask, other: ScopedTask, why: str) -> None:
        if other.id == task.id or (other.id, task.id) in reported:
            return
        reported.add((other.id, task.id))
        problems.append(
            Problem(
                task.file,
                "Scope",
                f"MODIFY {path} conflicts with {other.id} ({other.file}) in wave {wave}: {why}; "
                "move one task to a later wave or scope each to its own ::Class or ::function",
            )
        )

    seen: dict[str, ScopedTask] = {}  # task id -> task, in order
    wholes: dict[str, ScopedTask] = {}  # tasks modifying the whole file
    for task, symbol in users:
        if symbol is None:
            other = _first_other(seen, task.id)
            if other is not None:
                why = (
                    "both modify the whole file"
                    if other.id in wholes
                    else "one modifies the whole file"
                )
                clash(task, other, why)
            wholes.setdefault(task.id, task)
        else:
            other = _first_other(wholes, task.id)
            if other is not None:
                clash(task, other, "one modifies the whole file")
            if symbol in names:
                clash(task, names[symbol], f"::{symbol} and ::{symbol} overlap")
            for anc in _ancestors(symbol):
                if anc in names:
                    clash(task, names[anc], f"::{anc} and ::{symbol} overlap")
            if symbol in inner:
                other, sub = inner[symbol]
                clash(task, other, f"::{symbol} and ::{sub} overlap")
            names.setdefault(symbol, task)
            for anc in _ancestors(symbol):
                inner.setdefault(anc, (task, symbol))
        seen.setdefault(task.id, task)
    return problems


def scope_conflicts(tasks: Sequence[ScopedTask]) -> list[Problem]:
    """Every violation of the scope rules, reported at the later task (in the order given)."""
    problems: list[Problem] = []
    creators: dict[str, ScopedTask] = {}
    # (wave, path) -> [(task, symbol or None)]
    modifiers: dict[tuple[int, str], list[tuple[ScopedTask, str | None]]] = defaultdict(list)
    for task in tasks:
        for entry in task.scope:
            if entry.action == "CREATE":
                first = creators.setdefault(entry.path, task)
                if first.id != task.id:
                    problems.append(
                        Problem(
                            task.file,
                            "Scope",
                            f"CREATE {entry.path} is also created by {first.id} ({first.file}); "
                            "a path may be created by one task only: make one of them MODIFY it "
                            "in a later wave",
                        )
                    )
            elif entry.action == "MODIFY":
                modifiers[(task.wave, entry.path)].append((task, entry.symbol))
    for (wave, path), users in modifiers.items():
        if len({t.id for t, _ in users}) > 1:
            problems.extend(_modify_conflicts(wave, path, users))
    return problems


_GLOB = re.compile(r"[*?\[]")


def sparse_folders(scope: Sequence[ScopeEntry]) -> tuple[str, ...] | None:
    """The folders a sparse checkout of a task holds: the folder of each path it creates or
    modifies (a glob's fixed part, a path ending in `/` itself), outermost only, sorted.
    Cone mode always adds the files at the top level. None: no such path (a sparse set-up
    would leave the agent nothing of its work).

    A file's whole folder, not the file alone: its neighbours are what an agent reads
    first, and cone mode (folders only) is what keeps git's sparse checkout cheap.
    """
    folders: set[str] = set()
    named = False
    for entry in scope:
        if entry.action == "BOUNDARY":
            continue  # not the task's to touch; the agent widens the checkout to read it
        named = True
        path = _GLOB.split(entry.path.lstrip("/"), maxsplit=1)[0]
        if ".." in path.split("/"):
            continue  # out of the repository: nothing to check out
        folder = path.rstrip("/") if path.endswith("/") else path.rpartition("/")[0]
        if folder:
            folders.add(folder)
    if not named:
        return None
    outer = sorted(folders)
    return tuple(f for f in outer if not any(f.startswith(o + "/") for o in outer))
