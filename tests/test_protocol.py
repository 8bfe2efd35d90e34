"""The success rule (README, `cpo run` step 4), case by case, and the marker."""

from __future__ import annotations

from pathlib import Path

import pytest

from cpo.agents.base import AgentOutcome
from cpo.proc import ProcResult
from cpo.run.protocol import COMPLETION_PROTOCOL, read_marker, verdict

DONE = ProcResult(returncode=0, duration=1.0)


@pytest.mark.parametrize(
    ("proc", "outcome", "marker", "incomplete", "reason"),
    [
        (DONE, AgentOutcome(reported_result=True), True, False, None),
        (DONE, AgentOutcome(), True, False, None),  # no result reported: marker decides
        (DONE, AgentOutcome(), False, False, "no_completion_marker"),
        (DONE, AgentOutcome(), True, True, "agent_error"),
        (
            DONE,
            AgentOutcome(reported_result=True, is_error=True, error_text="x"),
            True,
            False,
            "agent_error",
        ),
        (DONE, AgentOutcome(error_class="max_turns"), True, False, "max_turns"),
        (
            ProcResult(returncode=2, duration=1, stderr_tail="boom"),
            AgentOutcome(),
            True,
            False,
            "exit_code_2",
        ),
        (
            ProcResult(returncode=None, duration=9, timed_out=True),
            AgentOutcome(),
            True,
            False,
            "timeout",
        ),
        (
            ProcResult(returncode=None, duration=9, idle_timed_out=True),
            AgentOutcome(),
            True,
            False,
            "idle_timeout",
        ),
        (
            ProcResult(returncode=-15, duration=9, interrupted=True),
            AgentOutcome(),
            True,
            False,
            "interrupted",
        ),
    ],
)
def test_verdict(
    proc: ProcResult, outcome: AgentOutcome, marker: bool, incomplete: bool, reason: str | None
) -> None:
    assert verdict(proc, outcome, marker, incomplete, None)[0] == reason


def test_marker_forms(tmp_path: Path) -> None:
    assert not read_marker(tmp_path).present
    (tmp_path / ".claude-task-complete").write_text("done\n")
    assert read_marker(tmp_path).present and read_marker(tmp_path).data is None
    (tmp_path / ".claude-task-complete").write_text('{"task_completed": false, "summary": "no"}')
    m = read_marker(tmp_path)
    assert m.says_incomplete and m.data == {"task_completed": False, "summary": "no"}


def test_protocol_names_the_marker() -> None:
    assert ".claude-task-complete" in COMPLETION_PROTOCOL and "commit" in COMPLETION_PROTOCOL
