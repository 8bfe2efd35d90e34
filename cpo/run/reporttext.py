"""The text the report writer puts on disk, built record by record and masked once per change.

Masking secrets (cpo.secrets) is most of what a report write costs: some thirty substring
searches over every byte, about 13 ms a megabyte, four times pydantic's own
serialisation. Whole, report.json is about 2 MB at 1,000 tasks, and it is rewritten a few
times a minute; most of its task records have not changed since the last time. So the
text is built from pieces — the report without its tasks, then one piece per task record —
and each record's piece is masked only when its text differs from the one masked last time
(a string comparison, a memcmp). Each record is still serialised afresh from the live
model at every whole write: a change made without telling the writer is never hidden by
a stale copy; only the masking is remembered.

`whole` gives exactly `Report.model_dump_json(indent=2)` (tests/test_journal.py checks it),
masked. A secret cannot straddle two pieces: pieces meet between JSON values, and every
shape cpo masks lies inside one JSON string.
"""

from __future__ import annotations

import json
from typing import Any

from cpo.run.report import Report, TaskRecord, WaveRecord
from cpo.secrets import Masker

# The tasks member of a report dumped with no tasks, at the top level: the only line that
# starts with exactly two spaces and `"tasks"` (a string value never holds a raw newline).
_NO_TASKS = '\n  "tasks": {}'
_INDENT = "\n    "  # a task record's lines inside report.json: two levels deep


# One encoder for every entry: json.dumps with options builds a new one at each call.
_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class ReportText:
    """Serialises and masks the report's text for the writer (one per ReportWriter)."""

    def __init__(self, masker: Masker) -> None:
        self.masker = masker
        # task id -> (the record's piece as dumped, the same masked), from the last whole write
        self._pieces: dict[str, tuple[str, str]] = {}
        self._keys: dict[str, str] = {}  # task id -> as a JSON string
        # task id -> the record as readers know it: as report.json gives it (the text of
        # its piece, as data), or as the current journal gave it since
        self._written: dict[str, dict[str, Any]] = {}
        self._journaled: dict[str, dict[str, Any]] = {}
        self._next: tuple[dict[str, tuple[str, str]], dict[str, dict[str, Any]]] = ({}, {})

    def whole(self, report: Report) -> str:
        """report.json's text, masked: the records unchanged since the last whole write
        are not masked again."""
        head = self.masker.mask(report.model_copy(update={"tasks": {}}).model_dump_json(indent=2))
        pieces: dict[str, tuple[str, str]] = {}
        written: dict[str, dict[str, Any]] = {}
        for task_id, rec in report.tasks.items():
            raw = f"{self._key(task_id)}: {rec.model_dump_json(indent=2)}"
            last = self._pieces.get(task_id)
            if last is not None and last[0] == raw:
                written[task_id] = self._written[task_id]
            else:
                last = raw, self._mask(raw)
                written[task_id] = rec.model_dump(mode="json")  # the same state as raw
            pieces[task_id] = last
        self._next = pieces, written  # the tasks of this report only
        if not pieces:
            return head
        tasks = "{" + _INDENT + ("," + _INDENT).join(p[1] for p in pieces.values()) + "\n  }"
        return head.replace(_NO_TASKS, _NO_TASKS[:-2] + tasks, 1)

    def _key(self, task_id: str) -> str:
        key = self._keys.get(task_id)
        if key is None:
            key = self._keys[task_id] = _json(task_id)
        return key

    def _mask(self, raw: str) -> str:
        return self.masker.mask(raw).replace("\n", _INDENT)

    def entry(
        self,
        seq: int,
        run: dict[str, Any],
        waves: list[WaveRecord],
        tasks: dict[str, TaskRecord],
    ) -> tuple[str, dict[str, dict[str, Any]]]:
        """One report.journal line, masked (cpo.run.journal), and the records as it gives
        them, for `journaled` once the line is on disk. A record already in this journal
        goes in as the fields that changed since readers last saw it, in report.json or in
        this journal (`fields`: a task's end is a few of its forty fields, a twentieth of
        its bytes to mask); a task report.json does not have goes in whole (`tasks`)."""
        whole: list[str] = []
        fields: list[str] = []
        sent: dict[str, dict[str, Any]] = {}
        for task_id, rec in tasks.items():
            now = rec.model_dump(mode="json")
            last = self._journaled.get(task_id) or self._written.get(task_id)
            if last is not None and last.keys() == now.keys():
                changed = {k: v for k, v in now.items() if last[k] != v}
                if changed:
                    fields.append(f"{self._key(task_id)}:{_json(changed)}")
            else:
                whole.append(f"{self._key(task_id)}:{_json(now)}")
            sent[task_id] = now
        line = (
            f'{{"seq":{seq},"run":{_json(run)},"waves":{{'
            + ",".join(f'"{w.number}":{w.model_dump_json()}' for w in waves)
            + f'}},"tasks":{{{",".join(whole)}}},"fields":{{{",".join(fields)}}}}}'
        )
        return self.masker.mask(line), sent

    def journaled(self, sent: dict[str, dict[str, Any]]) -> None:
        """The records of an entry now on disk: the next entries give their changes only."""
        self._journaled.update(sent)

    def restarted(self) -> None:
        """report.json was written whole (as `whole` last gave it) and a new journal
        started: readers know each record as report.json gives it. (Not before: after a
        failed write, readers still know what the last journal gave.)"""
        self._pieces, self._written = self._next
        self._journaled = {}
