"""report.journal: report writes that cost O(change), and readers that replay them."""

from __future__ import annotations

import json
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cpo.run import reportwriter
from cpo.run.journal import JOURNAL_FILE
from cpo.run.report import Attempt, Report, TaskRecord, WaveRecord, load_report
from cpo.run.reportwriter import ReportWriter
from cpo.run.states import TaskStatus, WaveStatus
from cpo.secrets import Masker


def big(n: int) -> Report:
    ids = [f"task-{i:04}" for i in range(n)]
    return Report(
        cpo_version="0",
        spec_id="TS-1",
        parallel_dir="/x",
        started_at="2026-11-25T00:00:00+00:00",
        pid=4242,
        waves=[WaveRecord(number=1, tasks=ids)],
        tasks={t: TaskRecord(id=t, wave=1, branch=f"feature/TS-1/{t}") for t in ids},
    )


def _writer(tmp_path: Path, n: int, monkeypatch: pytest.MonkeyPatch) -> ReportWriter:
    # No periodic catch-up of report.json during the test: only the rules under test.
    monkeypatch.setattr(ReportWriter, "WHOLE_INTERVAL", 3600.0)
    writer = ReportWriter(big(n), tmp_path, None)
    writer.save()
    return writer


def _finish(writer: ReportWriter, task_id: str) -> None:
    with writer.update_task(task_id, durable=True) as rec:
        rec.status, rec.commits, rec.error = TaskStatus.FAILED, 2, "no marker"


def test_a_durable_write_costs_the_change_not_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: each durable write rewrote report.json whole, O(tasks) (13 ms at 1,000)."""
    grown = {}
    for n in (10, 2000):
        folder = tmp_path / str(n)
        folder.mkdir()
        writer = _writer(folder, n, monkeypatch)
        whole = (folder / "report.json").stat().st_mtime_ns, (folder / "report.json").stat().st_size
        journal = (folder / JOURNAL_FILE).stat().st_size
        _finish(writer, "task-0003")
        grown[n] = (folder / JOURNAL_FILE).stat().st_size - journal
        after = (folder / "report.json").stat().st_mtime_ns, (folder / "report.json").stat().st_size
        assert after == whole  # report.json not rewritten
        assert load_report(folder) == writer.report  # and the reader sees the change
    assert grown[10] == grown[2000]


def test_readers_see_every_change_and_a_whole_write_restarts_the_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = _writer(tmp_path, 300, monkeypatch)
    monkeypatch.setattr(ReportWriter, "JOURNAL_MIN", 0)
    restarted = False
    for i in range(300):
        _finish(writer, f"task-{i:04}")
        with writer.update_task(f"task-{i:04}") as rec:  # as a merge records it
            rec.merged, writer.report.integration_commit = True, f"{i:040x}"
        with writer.update_wave(1, durable=True) as wave:
            wave.status = WaveStatus.RUNNING
        on_disk = load_report(tmp_path)
        assert on_disk == writer.report, i
        journal = (tmp_path / JOURNAL_FILE).stat().st_size
        whole = (tmp_path / "report.json").stat().st_size
        assert journal <= 2 * whole  # never much beyond the report: then written whole
        seq = json.loads((tmp_path / "report.json").read_text())["journal_seq"]
        restarted = restarted or seq > 1  # written whole since the first save
    assert restarted
    writer.close()
    assert (tmp_path / JOURNAL_FILE).read_text().count("\n") == 1  # the header only
    assert json.loads((tmp_path / "report.json").read_text())["tasks"]["task-0299"]["commits"] == 2


def test_a_journal_of_another_run_and_a_half_written_line_are_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = _writer(tmp_path, 3, monkeypatch)
    _finish(writer, "task-0001")
    journal = tmp_path / JOURNAL_FILE
    with journal.open("a") as fh:
        fh.write('{"seq": 99, "run": {"status": "comp')  # cpo killed mid-append
    assert load_report(tmp_path) == writer.report
    header, *entries = journal.read_text().split("\n")
    other = json.loads(header) | {"run": "1@another run"}
    journal.write_text("\n".join([json.dumps(other), *entries]))
    seen = load_report(tmp_path)
    assert seen is not None and seen.tasks["task-0001"].status == TaskStatus.PENDING


def test_a_journal_newer_than_the_report_read_is_not_applied_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader that read report.json just before a whole write and a new journal: the new
    journal's entries do not fit the old report (it reads again; here the race never
    ends, so it keeps the report as written whole)."""
    writer = _writer(tmp_path, 3, monkeypatch)
    _finish(writer, "task-0001")
    journal = tmp_path / JOURNAL_FILE
    header, *entries = journal.read_text().split("\n")
    journal.write_text("\n".join([json.dumps(json.loads(header) | {"base": 50}), *entries]))
    seen = load_report(tmp_path)
    assert seen is not None and seen.tasks["task-0001"].status == TaskStatus.PENDING


# -- the text written: pieces masked once per change ---------------------------------------
# Any unicode but `@`, which a URL's credentials need: no text here looks like a secret.
_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="@"), max_size=12
)
_EDITS = [
    "error",
    "last_action",
    "warning",
    "attempt",
    "run field",
    "option",
    "wave",
    "run",
    "save",
]


def _apply(writer: ReportWriter, what: str, task_id: str, text: str) -> None:
    """One change, on disk when this returns (each kind takes another path to it)."""
    if what == "run":  # the run's own fields: a whole write
        with writer.update(durable=True) as report:
            report.next_step = text
    elif what == "wave":
        with writer.update_wave(1, durable=True) as wave:
            wave.note = text
    elif what == "save":
        writer.save()
    else:
        with writer.update_task(task_id, durable=True) as rec:
            if what == "error":
                rec.error, rec.status = text, TaskStatus.FAILED
            elif what == "last_action":
                rec.last_action = text
            elif what == "warning":
                rec.warnings.append(text)
            elif what == "attempt":
                rec.attempts.append(Attempt(number=len(rec.attempts) + 1, started_at=text))
            elif what == "option":  # a run field's value changed in place
                writer.report.options.setdefault("notes", []).append(text)
            else:  # a run field changed along with a task (a merge's integration commit)
                writer.report.integration_commit = text


@given(
    _TEXT,
    st.lists(st.tuples(st.sampled_from(_EDITS), st.integers(0, 5), _TEXT), max_size=25),
)
@settings(max_examples=60, deadline=None)
def test_the_journal_replayed_and_the_whole_text_are_the_report_after_any_changes(
    odd_id: str, changes: list[tuple[str, int, str]]
) -> None:
    """After each change: report.json with its journal replayed is the live report, and
    report.json written whole (its records masked once per change, cpo.run.reporttext) is
    exactly pydantic's dump of the live report, whatever the edits and their unicode."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        report = big(5)
        report.tasks[odd_id] = TaskRecord(id=odd_id, wave=1, newer_field=[1, "é"])  # type: ignore[call-arg]
        ids = list(report.tasks)
        writer = ReportWriter(report, folder, None)
        writer.JOURNAL_MIN = 0  # written whole as soon as the journal outgrows the report
        writer.WHOLE_INTERVAL = 3600.0  # and not by the clock: only the rules under test
        writer.masker = writer.text.masker = Masker({})
        writer.save()
        for what, i, text in changes:
            _apply(writer, what, ids[i], text)
            assert load_report(folder) == writer.report
            whole = (folder / "report.json").read_text(encoding="utf-8")
            if Report.model_validate_json(whole).journal_seq == writer.report.journal_seq:
                assert whole == writer.report.model_dump_json(indent=2) + "\n"  # just written
        writer.close()
        whole = (folder / "report.json").read_text(encoding="utf-8")
        assert whole == writer.report.model_dump_json(indent=2) + "\n"


def test_a_whole_write_masks_only_the_records_that_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Masking is most of a write's cost (some thirty substring searches over each byte):
    a whole write after one task's change masks that record and the report's own fields,
    not the other 1,999 records again."""
    masked: list[int] = []
    real = Masker.mask

    def counted(self: Masker, text: str) -> str:
        masked.append(len(text))
        return real(self, text)

    monkeypatch.setattr(Masker, "mask", counted)
    writer = _writer(tmp_path, 2000, monkeypatch)
    size = (tmp_path / "report.json").stat().st_size
    masked.clear()
    _finish(writer, "task-0003")
    writer.save()
    assert sum(masked) < size / 10
    assert load_report(tmp_path) == writer.report
    writer.close()


def test_a_change_is_journaled_as_the_fields_that_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task's entry gives the fields that changed since readers last saw the record (in
    report.json or in the journal), also after report.json was written whole meanwhile:
    not its 300 files again for each action it takes."""
    writer = _writer(tmp_path, 3, monkeypatch)
    journal = tmp_path / JOURNAL_FILE
    grown = []
    for step in range(3):
        if step == 2:
            writer.save()  # a new journal
        size = journal.stat().st_size
        with writer.update_task("task-0001", durable=True) as rec:
            rec.files_changed = [f"src/module_{i:03}.py" for i in range(300)]
            rec.last_action = f"Edit src/module_{step:03}.py"
        grown.append(journal.stat().st_size - size)
        assert load_report(tmp_path) == writer.report
    assert grown[0] > 300 * 18 and grown[1] < 150 and grown[2] < 150
    entry = json.loads(journal.read_text().splitlines()[-1])
    assert entry["tasks"] == {}
    assert entry["fields"] == {"task-0001": {"last_action": "Edit src/module_002.py"}}
    writer.close()


def test_report_json_catches_up_after_three_thousand_times_a_whole_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not by the clock here: a clock of our own on which each reading takes 10 ms, so a
    whole write takes 10 ms and report.json next catches up with its journal 30 s later
    (a thousand times: 10 s, and twice as many catch-up writes of 25 ms at 1,000 tasks)."""
    clock = [1000.0]

    class Clock:
        @staticmethod
        def monotonic() -> float:
            # Only the test's own readings move it: the writer's flusher thread reads the
            # clock too, and a reading of its between the two around a whole write would
            # make that write "take" 20 ms, and the catch-up due 60 s later (CI saw it).
            if threading.current_thread() is threading.main_thread():
                clock[0] += 0.01
            return clock[0]

    monkeypatch.setattr(reportwriter, "time", Clock)
    writer = ReportWriter(big(3), tmp_path, None)
    writer.save()

    def seq_on_disk() -> int:
        return int(json.loads((tmp_path / "report.json").read_text())["journal_seq"])

    written = seq_on_disk()
    for later in (12.0, 29.0):
        clock[0] = 1000.0 + later
        _finish(writer, "task-0001")
        assert seq_on_disk() == written, later  # in the journal only
    clock[0] = 1031.0
    _finish(writer, "task-0002")
    assert seq_on_disk() == writer.report.journal_seq  # written whole
    writer.close()


def test_the_changed_fields_of_a_record_the_reader_lacks_end_the_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer never gives them (it knows what readers have); a journal that does is
    not ours to guess from: the reader keeps what came before, and does not fail."""
    writer = _writer(tmp_path, 3, monkeypatch)
    _finish(writer, "task-0001")
    seq = writer.report.journal_seq
    with (tmp_path / JOURNAL_FILE).open("a") as fh:
        for n, task in ((seq + 1, "task-0404"), (seq + 2, "task-0002")):
            line = {"seq": n, "run": {}, "waves": {}, "tasks": {}, "fields": {task: {"commits": 9}}}
            fh.write(json.dumps(line) + "\n")
    seen = load_report(tmp_path)
    assert seen == writer.report and seen.tasks["task-0002"].commits == 0
    writer.close()
