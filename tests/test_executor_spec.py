"""The executor boundary's data: launches and events survive JSON, junk is no event, a
worker's stream always ends in a verdict, and an unknown executor is one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from cpo.errors import UsageError
from cpo.executors.base import executor_names, load_executor
from cpo.executors.spec import (
    AgentLaunch,
    AgentLine,
    Exited,
    LogLine,
    Started,
    TaskLaunch,
    dump_event,
    parse_event,
)
from cpo.executors.stream import EventStream
from tests.runkit import cpo, make_spec


def test_every_event_survives_a_json_line() -> None:
    events = [
        Started(host="h", pid=12, workdir="/w"),
        LogLine(text="[cpo] hello"),
        AgentLine(raw='{"type":"x"}', logs=("a", "b"), actions=("Write a.py",)),
        Exited(ok=False, reason="timeout", files=("a.py",), marker={"task_completed": True}),
    ]
    for event in events:
        line = dump_event(event)
        assert "\n" not in line
        assert parse_event(line) == event


@pytest.mark.parametrize("line", ["", "hello", "{not json", '{"type": "other"}', "[1]"])
def test_a_line_that_is_no_event_is_skipped(line: str) -> None:
    assert parse_event(line) is None


def test_a_launch_survives_json_and_refuses_unknown_fields() -> None:
    launch = TaskLaunch(
        spec_id="s",
        task_id="t",
        wave=1,
        attempt=1,
        remote="file:///r.git",
        branch="cpo-worker/s/t/attempt-1",
        start_commit="0" * 40,
        agent=AgentLaunch(backend="claude", extra_args=("--x",)),
        prompt="do it",
        env_names=("ANTHROPIC_API_KEY",),
    )
    assert TaskLaunch.model_validate_json(launch.model_dump_json()) == launch
    with pytest.raises(ValueError, match="surprise"):
        TaskLaunch.model_validate({**launch.model_dump(), "surprise": 1})


def test_an_unknown_executor_names_the_known_ones() -> None:
    assert executor_names()[0] == "local"
    with pytest.raises(UsageError) as err:
        load_executor("nope", {})
    assert "unknown executor" in err.value.message
    assert "local" in (err.value.hint or "")


def test_a_stream_gives_the_workers_verdict_and_ignores_what_follows() -> None:
    seen: list[object] = []
    stream = EventStream(seen.append)
    for line in ["job runner says hi", dump_event(LogLine(text="x")), dump_event(Exited(ok=True))]:
        stream.feed(line)
    stream.feed(dump_event(LogLine(text="after the verdict")))
    assert seen == [LogLine(text="x"), Exited(ok=True)]
    assert stream.verdict(stopped=True, detail="exit code 0") == Exited(ok=True)


def test_a_worker_without_a_verdict_crashed_unless_cpo_stopped_it() -> None:
    stream = EventStream(lambda _e: None)
    stream.feed(dump_event(Started(host="h")))
    crashed = stream.verdict(stopped=False, detail="exit code -9")
    assert (crashed.ok, crashed.reason) == (False, "crashed")
    assert crashed.error == "the worker ended without a verdict: exit code -9"
    assert stream.verdict(stopped=True, detail="").reason == "interrupted"


def test_run_refuses_an_unknown_executor_in_one_line(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": "@script marker"}])
    proc = cpo("run", str(root), "--executor", "nope", cwd=git_repo)
    assert proc.returncode == 2
    assert "--executor nope: unknown executor" in proc.stderr
    assert "Traceback" not in proc.stderr


def _launch(**fields: object) -> TaskLaunch:
    base = dict(spec_id="S", task_id="t", wave=1, attempt=1, remote="file:///r", branch="b")
    agent = AgentLaunch(backend="claude")
    return TaskLaunch.model_validate(
        {**base, "start_commit": "c", "agent": agent, "prompt": "p", **fields}
    )


def test_a_worker_s_limits_count_its_setup_commands_and_nudges() -> None:
    # what a cluster's backstop allows (cpo.executors.ray): each setup command and each
    # agent run may take the whole timeout, as a local task's do
    plain = _launch(timeout=100, idle_timeout=10, grace=5)
    assert (plain.longest(), plain.longest_quiet()) == (105, 15)
    busy = _launch(timeout=100, idle_timeout=10, grace=5, nudges=2, setup=("make", "npm ci"))
    assert busy.longest() == 100 * 5 + 5 * 3
    assert busy.longest_quiet() == 100  # a setup command prints when it ends
    assert _launch(idle_timeout=10, setup=("make",)).longest_quiet() is None
    assert _launch().longest() is None
