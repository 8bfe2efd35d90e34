"""The server's pure parts: keys, addresses, roots, and events from report changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from cpo.errors import UsageError
from cpo.run.report import Report, TaskRecord, WaveRecord
from cpo.run.states import RunStatus, TaskStatus, WaveStatus
from cpo.serve.events import diff
from cpo.serve.security import (
    api_keys,
    check_config,
    inside_roots,
    is_loopback,
    key_matches,
    request_key,
)


def test_keys_come_from_the_environment_before_the_config() -> None:
    assert api_keys({"CPO_API_KEYS": " a1 , ,b2"}, ["c3"]) == ("a1", "b2")
    assert api_keys({}, ["c3"]) == ("c3",)
    assert api_keys({"CPO_API_KEYS": ""}, ["c3"]) == ()  # set but empty: no keys


def test_key_headers_and_compare() -> None:
    assert request_key({"x-api-key": "k"}) == "k"
    assert request_key({"authorization": "Bearer  k2 "}) == "k2"
    assert request_key({"authorization": "Basic abc"}) is None
    assert key_matches("k2", ["k1", "k2"]) and not key_matches("k3", ["k1"])
    assert not key_matches(None, ["k1"]) and not key_matches("", [""])


def test_only_loopback_may_go_without_a_key(tmp_path: Path) -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "::1", "[::1]", "localhost", "127.1.2.3"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.168.1.2", "example.org", "::"))
    with pytest.raises(UsageError, match="without an API key"):
        check_config("0.0.0.0", 8080, [tmp_path], ())
    assert check_config("0.0.0.0", 8080, [tmp_path], ("k",)).roots == (tmp_path.resolve(),)
    with pytest.raises(UsageError, match="not a directory"):
        check_config("127.0.0.1", 8080, [tmp_path / "nope"], ())


def test_paths_must_stay_inside_a_root_with_symlinks_followed(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "in").mkdir(parents=True)
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    (outside / "back").symlink_to(root / "in")
    roots = [root.resolve()]
    assert inside_roots("in", roots, base=root) == (root / "in").resolve()
    assert inside_roots(root, roots, base=tmp_path) == root.resolve()
    assert inside_roots(outside / "back", roots, base=tmp_path) == (root / "in").resolve()
    for bad in ("escape", "../outside", "in/../../outside", str(outside), "/"):
        assert inside_roots(bad, roots, base=root) is None, bad


def report_with(tasks: dict[str, TaskRecord], waves: list[WaveRecord], status: RunStatus) -> Report:
    return Report(
        cpo_version="0",
        spec_id="TS-1",
        parallel_dir="/x",
        started_at="2026-01-01T00:00:00+00:00",
        status=status,
        tasks=tasks,
        waves=waves,
    )


def test_events_are_the_progress_lines_and_the_changes() -> None:
    pending = report_with(
        {"t1": TaskRecord(id="t1", wave=1), "t2": TaskRecord(id="t2", wave=1)},
        [WaveRecord(number=1, tasks=["t1", "t2"])],
        RunStatus.RUNNING,
    )
    running = pending.model_copy(deep=True)
    running.tasks["t1"].status = TaskStatus.RUNNING
    running.waves[0].status = WaveStatus.RUNNING
    acting = running.model_copy(deep=True)
    acting.tasks["t1"].last_action = "Write a.py"
    acting.tasks["t1"].cost_usd = 0.5
    done = acting.model_copy(deep=True)
    done.tasks["t1"].status, done.tasks["t1"].commits = TaskStatus.COMPLETED, 2
    done.tasks["t2"].status, done.tasks["t2"].reason = TaskStatus.FAILED, "timeout"
    done.waves[0].status = WaveStatus.FAILED
    done.status = RunStatus.FAILED

    def lines(events: list[tuple[str, dict[str, object]]]) -> list[object]:
        return [d["line"] for kind, d in events if kind == "progress"]

    assert lines(diff(pending, running, "running", "running")) == [
        "[PROGRESS] wave=1 task=t1 status=started",
        "[PROGRESS] wave=1 status=running",
    ]
    action = diff(running, acting, "running", "running")
    assert [k for k, _ in action] == ["task"]
    assert (action[0][1]["last_action"], action[0][1]["cost_usd"]) == ("Write a.py", 0.5)
    assert lines(diff(acting, done, "running", "failed")) == [
        "[PROGRESS] wave=1 task=t1 status=completed commits=2",
        "[PROGRESS] wave=1 task=t2 status=failed error=timeout",
        "[PROGRESS] wave=1 status=failed tasks=1/2",
        "[PROGRESS] execution status=failed",
    ]
    assert diff(done, done, "failed", "failed") == []
    stopped = diff(running, running, "running", "stopped")
    assert stopped == [("run", {"status": "running", "state": "stopped"})]


def test_config_keys_are_read_and_never_shown(tmp_path: Path) -> None:
    from cpo.config import load_settings, show_rows

    config = tmp_path / "home" / ".config" / "cpo" / "config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text("server:\n  api_keys: [first-key-123456, second-key-654321]\n")
    settings = load_settings(None, cwd=tmp_path)
    assert settings.api_keys == ("first-key-123456", "second-key-654321")
    shown = str(show_rows(settings))
    assert "server.api_keys" in shown and "first-key" not in shown and "2 key(s)" in shown
    config.write_text("server:\n  api_keys: ['  ']\n  api_key: x\n")
    with pytest.raises(UsageError, match=r"server\.api_keys"):
        load_settings(None, cwd=tmp_path)
