"""Parse a plan file: its Progress Tracking table and its `## Task <id>` sections.

Every parsed thing keeps where it is (line index, character span in the line) so that
`cpo.planfile.edit` can change exactly those characters and nothing else. Lines keep their
own endings (LF or CRLF, mixed even); lines inside code fences are neither headings nor
table rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

STATUSES = ("TASK:PENDING", "TASK:IN_PROGRESS", "TASK:COMPLETE", "TASK:FAILED", "TASK:BLOCKED")
DEFAULT_STREAM = "default"
# Header names (lowercase) of the columns cpo reads; other columns are kept as they are.
COLUMNS = ("task", "stream", "name", "status", "date", "depends")
REQUIRED = ("task", "status")

_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
# `Task F3: title`, `Task F3 — title`, `Task F3`.
_TASK_HEADING = re.compile(r"task\s+([^\s:]+)\s*(?:[:—–-]\s*)?(.*)$", re.IGNORECASE)
_TRACKING = re.compile(r"progress\s+tracking", re.IGNORECASE)
_SEPARATOR_CELL = re.compile(r"\s*:?-{1,}:?\s*")
# `**Status**: X` or `**Status:** X`; group 2 is the status word.
_STATUS_LINE = re.compile(r"^(\s*\*\*status(?:\*\*:|:\*\*)[ \t]*)(\S*)", re.IGNORECASE)


@dataclass(frozen=True)
class Cell:
    start: int  # character offsets in the line's text (without its ending)
    end: int
    text: str  # stripped


@dataclass(frozen=True)
class Row:
    line: int  # 0-based line index
    cells: tuple[Cell, ...]
    values: dict[str, str]  # known column -> stripped value

    @property
    def task_id(self) -> str:
        return self.values.get("task", "")

    @property
    def stream(self) -> str:
        return self.values.get("stream", "") or DEFAULT_STREAM

    @property
    def status(self) -> str:
        return self.values.get("status", "")

    @property
    def depends(self) -> tuple[str, ...]:
        raw = self.values.get("depends", "")
        return tuple(d for d in re.split(r"[,\s]+", raw) if d and d not in ("-", "—"))


@dataclass(frozen=True)
class Section:
    task_id: str
    title: str
    line: int  # the heading's line index
    end: int  # index of the first line after the section
    status_line: int | None  # index of its first `**Status**:` line
    status_span: tuple[int, int] | None  # the status word's span in that line


@dataclass
class PlanDoc:
    lines: list[str]  # with their endings; "".join(lines) is the file
    columns: dict[str, int] = field(default_factory=dict)  # known column -> cell index
    header_line: int | None = None
    rows: list[Row] = field(default_factory=list)
    sections: dict[str, Section] = field(default_factory=dict)
    duplicate_sections: list[Section] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line index, message)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def row(self, task_id: str) -> Row:
        return next(r for r in self.rows if r.task_id == task_id)

    def prompt(self, task_id: str) -> str:
        """The task's section, verbatim (heading included), as its agent's prompt."""
        s = self.sections[task_id]
        return "".join(self.lines[s.line : s.end])


def split_lines(text: str) -> list[str]:
    """Lines with their endings; only LF ends a line (CR stays with its line)."""
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def body(line: str) -> str:
    """A line without its ending (LF or CRLF)."""
    return line.rstrip("\n").removesuffix("\r")


def split_cells(text: str) -> tuple[Cell, ...] | None:
    """The cells of a table row (`| a | b |`, outer pipes optional); None if not a row."""
    if "|" not in text:
        return None
    bounds = [i for i, c in enumerate(text) if c == "|" and (i == 0 or text[i - 1] != "\\")]
    if not bounds:
        return None
    starts = [-1, *bounds]
    ends = [*bounds, len(text)]
    spans = list(zip((s + 1 for s in starts), ends, strict=True))
    if not text[: bounds[0]].strip():
        spans = spans[1:]  # the leading pipe
    if spans and not text[spans[-1][0] :].strip():
        spans = spans[:-1]  # the trailing pipe
    return tuple(Cell(a, b, text[a:b].strip()) for a, b in spans)


def _is_separator(cells: tuple[Cell, ...]) -> bool:
    return (
        bool(cells)
        and all(_SEPARATOR_CELL.fullmatch(c.text or "-") for c in cells)
        and any("-" in c.text for c in cells)
    )


def _outside_fences(lines: list[str]) -> list[bool]:
    """Per line: whether it is Markdown (not in a code fence, not YAML frontmatter)."""
    result, fenced = [], False
    closing = _frontmatter_end(lines)
    if closing is not None:
        result = [False] * (closing + 1)
        lines = lines[closing + 1 :]
    for line in lines:
        if _FENCE.match(body(line)):
            fenced = not fenced
            result.append(False)
        else:
            result.append(not fenced)
    return result


def _frontmatter_end(lines: list[str]) -> int | None:
    """The index of the `---` line closing a frontmatter that opens on the first line."""
    if not lines or body(lines[0]).rstrip() != "---":
        return None
    return next((i for i in range(1, len(lines)) if body(lines[i]).rstrip() == "---"), None)


def parse_plan(text: str) -> PlanDoc:
    doc = PlanDoc(lines=split_lines(text))
    live = _outside_fences(doc.lines)
    _parse_table(doc, live)
    _parse_sections(doc, live)
    return doc


def _parse_table(doc: PlanDoc, live: list[bool]) -> None:
    """The first table whose header has Task and Status columns, after a Progress Tracking
    heading when there is one."""
    start = 0
    for i, line in enumerate(doc.lines):
        m = _HEADING.match(body(line)) if live[i] else None
        if m and _TRACKING.search(m.group(2)):
            start = i
            break
    for i in range(start, len(doc.lines) - 1):
        header = split_cells(body(doc.lines[i])) if live[i] else None
        below = split_cells(body(doc.lines[i + 1]))
        if not header or not below or not _is_separator(below):
            continue
        names = [c.text.lower() for c in header]
        if not all(r in names for r in REQUIRED):
            continue
        doc.header_line = i
        doc.columns = {n: names.index(n) for n in COLUMNS if n in names}
        for j in range(i + 2, len(doc.lines)):
            cells = split_cells(body(doc.lines[j])) if live[j] else None
            if cells is None:
                break
            values = {n: cells[k].text if k < len(cells) else "" for n, k in doc.columns.items()}
            if len(cells) != len(header):
                doc.problems.append(
                    (j, f"the row has {len(cells)} cells, the header {len(header)}")
                )
            doc.rows.append(Row(j, cells, values))
        return


def _task_heading(title: str, ids: set[str]) -> re.Match[str] | None:
    """A `Task <id>` heading: its id is in the table, or looks like one (a digit in it, or
    no lowercase letter: `F3`, `task-7`, `QA`). `## Task overview` or `## Task List` is a
    heading about tasks, not a task's section."""
    m = _TASK_HEADING.match(title)
    if m is None:
        return None
    word = m.group(1)
    looks_like_id = any(c.isdigit() for c in word) or not any(c.islower() for c in word)
    return m if word in ids or looks_like_id else None


def _parse_sections(doc: PlanDoc, live: list[bool]) -> None:
    headings = []
    for i, line in enumerate(doc.lines):
        m = _HEADING.match(body(line)) if live[i] else None
        if m:
            headings.append((i, len(m.group(1)), m.group(2)))
    ids = {r.task_id for r in doc.rows}
    for n, (i, level, title) in enumerate(headings):
        m = _task_heading(title, ids)
        if not m:
            continue
        # The section ends at the next heading of its level or above, or the next task's.
        end = next(
            (j for j, lv, t in headings[n + 1 :] if lv <= level or _task_heading(t, ids)),
            len(doc.lines),
        )
        status_line, span = None, None
        for j in range(i + 1, end):
            sm = _STATUS_LINE.match(body(doc.lines[j])) if live[j] else None
            if sm:
                status_line, span = j, (sm.start(2), sm.end(2))
                break
        section = Section(m.group(1), (m.group(2) or "").strip(), i, end, status_line, span)
        if section.task_id in doc.sections:
            doc.duplicate_sections.append(section)
        else:
            doc.sections[section.task_id] = section
