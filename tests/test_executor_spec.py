"""The executor boundary's data: launches and events survive JSON, junk is no event, and
an executor that is not installed or unknown is one clear line."""

from __future__ import annotations

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
