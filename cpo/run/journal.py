"""report.journal: what changed since report.json was last written whole, one JSON line each.

Rewriting the whole report at each change costs O(tasks) per change, quadratic over a run
(13 ms a write at 1,000 tasks, two writes per task). So the report writer appends each
change to this journal instead, O(change): the run's own fields that changed, the records
of the waves that changed, and the fields of each task record that changed since readers
last saw it (`fields`: a task's end is a few of its forty, a twentieth of its bytes; a
task report.json does not have goes in whole, under `tasks`). report.json is rewritten
whole only when the journal has grown as large as it (so whole writes cost no more than
the appends, amortised), now and then, and when the run ends. `load_report` reads
report.json and replays the journal on top: `cpo status`, `--resume` and the web UI see
every change, after a `kill -9` too.

The first line is a header: the run the journal belongs to (its pid and start) and
`base`, the `journal_seq` of the report.json written just before it. Each entry has a
`seq`; report.json's `journal_seq` says which entries it already holds. The writer writes
report.json before it starts a new journal, so a reader that finds a journal newer than
the report it read (base above its seq) reads the report again; a journal of another run
(a kill before a new run's first journal) is ignored. An append is one `write` of a whole
line; a reader ignores a last line still being written.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

JOURNAL_FILE = "report.journal"


def atomic_write(path: Path, text: str) -> None:
    """Write via a temp file in the same folder and rename: readers see old or new, whole.

    The temp file is made with `os.open(..., 0o666)`, not mkstemp (always 0600), so what
    cpo writes follows the user's umask like any other tool's output.
    """
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def run_id(report: dict[str, Any]) -> str:
    """Which run a report (as JSON data) or a journal belongs to."""
    return f"{report.get('pid')}@{report.get('started_at')}"


class Journal:
    """The writer's side: start afresh after each whole write, append entries. The file
    stays open between appends (an open per save was most of a save's cost)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = 0  # bytes appended since the last restart
        self._fd: int | None = None

    def restart(self, run: str, base: int) -> None:
        self.close()
        atomic_write(self.path, json.dumps({"run": run, "base": base}) + "\n")
        self.size = 0

    def append(self, line: str) -> None:
        if self._fd is None:
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
            self._fd = os.open(self.path, flags, 0o666)
        data = (line + "\n").encode("utf-8")
        written = 0
        while written < len(data):
            written += os.write(self._fd, data[written:])
        self.size += len(data)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def replay(report: dict[str, Any], text: str) -> dict[str, Any] | None:
    """`report` (report.json's data) with the journal's newer entries applied, in place;
    None when the journal is newer than this report.json (read it again)."""
    lines = text.split("\n")
    try:
        header = json.loads(lines[0])
    except ValueError:
        return report  # empty, or its header is still being written
    if not isinstance(header, dict) or header.get("run") != run_id(report):
        return report  # another run's: this report.json is newer than it
    seq = report.get("journal_seq") or 0
    if (header.get("base") or 0) > seq:
        return None
    waves = {str(w.get("number")): i for i, w in enumerate(report.get("waves") or [])}
    for line in lines[1:]:
        try:
            change = json.loads(line)
        except ValueError:
            break  # the last line, being written
        if change["seq"] <= seq:
            continue
        tasks = report.setdefault("tasks", {})
        if not all(t in tasks or t in change["tasks"] for t in change.get("fields") or {}):
            break  # the changes of a record this file never gave: not ours to guess
        report.update(change["run"])
        report["journal_seq"] = seq = change["seq"]
        tasks.update(change["tasks"])
        for task_id, fields in (change.get("fields") or {}).items():
            tasks[task_id].update(fields)  # the record is in an earlier entry or report.json
        for number, wave in change["waves"].items():
            if number in waves:
                report["waves"][waves[number]] = wave
    return report


def current(path: Path) -> bytes | dict[str, Any]:
    """The report at `path` as it is now: report.json's bytes when its journal holds no
    newer change (the common, fast case), else its data with the journal replayed."""
    for _ in range(3):  # a whole write and a new journal between our two reads: again
        raw = path.read_bytes()
        try:
            text = (path.parent / JOURNAL_FILE).read_text(encoding="utf-8")
        except OSError:
            text = ""
        if "\n{" not in text:  # no entry: report.json is all there is
            return raw
        data = replay(json.loads(raw), text)
        if data is not None:
            return data
    return raw  # the writer kept racing us: the report as last written whole
