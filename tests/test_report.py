"""report.json and the manifest's execution block: atomic, versioned, key order kept."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import jsonschema
import pytest

from cpo.errors import UsageError
from cpo.run.report import Report, TaskRecord, load_report, report_schema
from cpo.run.reportwriter import ReportWriter
from cpo.run.states import TaskStatus


def sample() -> Report:
    return Report(
        cpo_version="0",
        spec_id="TS-1",
        parallel_dir="/x",
        started_at="t",
        tasks={"a": TaskRecord(id="a", wave=1)},
    )


def test_writer_keeps_manifest_keys_and_order(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"z": 1, "tech_spec_id": "TS-1", "a": [1], "waves": []}))
    writer = ReportWriter(sample(), tmp_path, manifest)
    writer.save()
    data = json.loads(manifest.read_text())
    assert list(data) == ["z", "tech_spec_id", "a", "waves", "execution"]
    assert data["execution"]["status"] == "running"
    before = manifest.stat().st_mtime_ns
    writer.report.tasks["a"].commits = 3  # task detail: report only, manifest untouched
    writer.save()
    assert manifest.stat().st_mtime_ns == before
    assert load_report(tmp_path) == writer.report


def test_every_write_is_whole_and_schema_valid(tmp_path: Path) -> None:
    seen: list[str] = []
    writer = ReportWriter(sample(), tmp_path, None, on_write=seen.append)
    writer.save()
    writer.note_action("a", "Write x.py")
    validator = jsonschema.Draft202012Validator(report_schema())
    for text in seen:
        validator.validate(json.loads(text))
    assert json.loads((tmp_path / "report.json").read_text())["cpo_report_version"] == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".report.json")]


def test_secrets_are_masked_in_the_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_API_TOKEN", "tok-abcdefghijkl")
    report = sample()
    report.tasks["a"].error = "auth failed with tok-abcdefghijkl"
    ReportWriter(report, tmp_path, None).save()
    assert "tok-abcdefghijkl" not in (tmp_path / "report.json").read_text()


def test_a_foreign_report_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text('{"something": "else"}')
    with pytest.raises(UsageError, match="not a cpo report"):
        load_report(tmp_path)
    assert load_report(tmp_path / "nowhere") is None


def test_report_files_follow_the_umask(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text("{}")
    old = os.umask(0o022)
    try:
        ReportWriter(sample(), tmp_path, manifest).save()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "report.json").stat().st_mode) == 0o644
    assert stat.S_IMODE(manifest.stat().st_mode) == 0o644


def test_a_change_is_written_when_its_block_ends_and_not_if_it_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ReportWriter, "FLUSH_INTERVAL", 3600.0)
    seen: list[str] = []
    writer = ReportWriter(sample(), tmp_path, None, on_write=seen.append)
    writer.save()
    with writer.update_task("a") as rec:
        rec.status, rec.reason = TaskStatus.FAILED, "timeout"
        rec.commits = 2
    assert len(seen) == 1  # pending: written within the interval or at close
    writer.close()
    assert len(seen) == 2
    assert json.loads(seen[1])["tasks"]["a"]["status"] == "failed"
    writer = ReportWriter(sample(), tmp_path, None, on_write=seen.append)
    writer.save()
    with pytest.raises(RuntimeError, match="half-made"), writer.update() as report:
        report.error = "half-made"
        raise RuntimeError("half-made change")
    writer.close()
    assert len(seen) == 3  # the save only: the failed block marked nothing to write


def test_many_changes_share_few_writes_and_the_last_state_is_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ReportWriter, "FLUSH_INTERVAL", 3600.0)
    seen: list[str] = []
    writer = ReportWriter(sample(), tmp_path, None, on_write=seen.append)
    for n in range(1000):
        with writer.update_task("a") as rec:
            rec.commits = n
        writer.note_action("a", f"step {n}")
    writer.close()
    # The first change goes out at once, the rest wait for the interval or the close.
    assert 1 <= len(seen) <= 2
    on_disk = load_report(tmp_path)
    assert on_disk is not None and on_disk.tasks["a"].commits == 999
    assert on_disk.tasks["a"].last_action == "step 999"


def test_a_durable_change_is_on_disk_when_its_block_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ReportWriter, "FLUSH_INTERVAL", 3600.0)
    writer = ReportWriter(sample(), tmp_path, None)
    writer.save()
    with writer.update_task("a", durable=True) as rec:
        rec.status = TaskStatus.COMPLETED
    on_disk = load_report(tmp_path)
    assert on_disk is not None and on_disk.tasks["a"].status == "completed"
    writer.close()


def test_a_change_reaches_the_disk_without_a_close(tmp_path: Path) -> None:
    writer = ReportWriter(sample(), tmp_path, None)
    with writer.update_task("a") as rec:
        rec.commits = 7
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        on_disk = load_report(tmp_path)
        if on_disk is not None and on_disk.tasks["a"].commits == 7:
            break
        time.sleep(0.02)
    else:
        raise AssertionError("the flusher never wrote the change")
    writer.close()
