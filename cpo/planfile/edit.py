"""Change a task's status (and date) in a plan's text, and nothing else.

Only the characters of the row's Status and Date cells and of the section's `**Status**:`
word change: line endings, other cells, other rows and the spaces around a cell stay.
A cell keeps its width when the new word fits in it, so an aligned table stays aligned.
"""

from __future__ import annotations

from cpo.planfile.doc import Cell, body, parse_plan


def fill_cell(line: str, cell: Cell, value: str) -> str:
    """`line` (one line, ending included) with `cell`'s content replaced by `value`."""
    text = body(line)
    ending = line[len(text) :]
    raw = text[cell.start : cell.end]
    if raw.strip():
        lead = raw[: len(raw) - len(raw.lstrip())]
        min_pad = 1 if raw[-1:].isspace() else 0
    else:
        lead, min_pad = raw[:1], min(len(raw), 1)
    # Keep the cell's width when the value fits (an aligned table stays aligned), and at
    # least the one space that separated the old value from the next pipe.
    pad = max(len(raw) - len(lead) - len(value), min_pad)
    new = lead + value + " " * pad
    return text[: cell.start] + new + text[cell.end :] + ending


def set_status(text: str, task_id: str, status: str, date: str | None = None) -> str:
    """The plan with `task_id`'s status cell and `**Status**:` word set to `status`, and
    its date cell to `date` when given (and the table has a Date column).

    The task must have a row (its section is optional). Raises KeyError otherwise.
    """
    doc = parse_plan(text)
    rows = [r for r in doc.rows if r.task_id == task_id]
    if not rows:
        raise KeyError(task_id)
    row = rows[0]
    line = doc.lines[row.line]
    # Right to left, so that an earlier cell's span is still right after a later one changed.
    changes = [(doc.columns["status"], status)]
    if date is not None and "date" in doc.columns:
        changes.append((doc.columns["date"], date))
    for index, value in sorted(changes, reverse=True):
        if index < len(row.cells) and row.cells[index].text != value:
            line = fill_cell(line, row.cells[index], value)
    doc.lines[row.line] = line
    section = doc.sections.get(task_id)
    if section is not None and section.status_line is not None and section.status_span:
        old = doc.lines[section.status_line]
        a, b = section.status_span
        doc.lines[section.status_line] = old[:a] + status + old[b:]
    return doc.text


def without_statuses(text: str) -> list[str]:
    """The plan's lines with every status and date cell and `**Status**:` word emptied:
    two plans that differ only where cpo writes have the same."""
    doc = parse_plan(text)
    lines = list(doc.lines)
    keys = [doc.columns[k] for k in ("date", "status") if k in doc.columns]
    for row in doc.rows:
        line = lines[row.line]
        for index in sorted(keys, reverse=True):
            if index < len(row.cells):
                cell = row.cells[index]
                line = line[: cell.start] + line[cell.end :]
        lines[row.line] = line
    for section in doc.sections.values():
        if section.status_line is not None and section.status_span is not None:
            a, b = section.status_span
            old = lines[section.status_line]
            lines[section.status_line] = old[:a] + old[b:]
    return lines
