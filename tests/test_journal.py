"""report.journal: report writes that cost O(change), and readers that replay them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cpo.run.journal import JOURNAL_FILE
from cpo.run.report import Report, TaskRecord, WaveRecord, load_report
from cpo.run.reportwriter import ReportWriter
from cpo.run.states import TaskStatus, WaveStatus


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
