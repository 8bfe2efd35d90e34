"""CappedLog: an agent log file that stops growing at its cap and says so."""

from __future__ import annotations

from pathlib import Path

from cpo.logfile import CappedLog


def _notice(message: str) -> str:
    return f"[cpo] {message}"


def test_output_past_the_cap_is_counted_not_written_and_its_tail_kept(tmp_path: Path) -> None:
    path = tmp_path / "t.log"
    with CappedLog(path, 10_000, _notice) as log:
        log.note("header")
        for i in range(2_000):
            log.write(f"line {i:04d}")
        log.note("[cpo] a line of cpo's own is always written")
    text = path.read_text()
    assert len(text) <= 10_000 + 1_000 + 500  # cap, a tenth of it as tail, notices
    lines = text.splitlines()
    assert lines[0] == "header" and lines[1] == "line 0000"
    assert "[cpo] log cap reached: output past 10000 bytes is not logged" in text
    assert "[cpo] a line of cpo's own is always written" in text
    assert lines[-1] == "line 1999"  # the agent's last lines are there
    assert "bytes of agent output were not logged" in text


def test_earlier_attempts_count_toward_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "t.log"
    path.write_text("x" * 9_990 + "\n")
    with CappedLog(path, 10_000, _notice) as log:
        log.write("attempt 2 says this")
    assert "log cap reached" in path.read_text()


def test_under_the_cap_nothing_is_added(tmp_path: Path) -> None:
    path = tmp_path / "t.log"
    with CappedLog(path, 10_000, _notice) as log:
        log.write("one")
        log.write("two")
    assert path.read_text() == "one\ntwo\n"
