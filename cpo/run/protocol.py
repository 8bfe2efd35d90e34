"""The task protocol: what cpo tells every agent, the completion marker, and the verdict."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpo.agents.base import AgentOutcome
from cpo.git import MARKER
from cpo.proc import ProcResult

COMPLETION_PROTOCOL = f"""\
You are one of several agents working in parallel, each in its own git worktree and branch.
Work only inside the current directory. When your task is done:
1. Commit all of your work on the current branch (git add -A && git commit -m "...").
   Do not switch branches, merge, rebase or push.
2. Then write a file named {MARKER} in the root of this worktree containing one JSON object:
   {{"task_completed": true, "summary": "<one paragraph>", "files_created": [...],
    "files_modified": [...], "tests_run": N, "tests_passed": N, "tests_failed": N}}
   If you could not complete the task, write {{"task_completed": false, "summary": "<why>"}}.
The file {MARKER} is how the orchestrator knows you finished; do not commit it.
Do not use git stash: the stash is shared with the other agents' worktrees, so your entry
can be popped by another agent and theirs by you. To set work aside, commit it on the
current branch instead (a work-in-progress commit is fine).
Other agents run servers on this machine at the same time: any server you start (dev
server, test database...) must listen on a port from $CPO_PORT_BASE to
$CPO_PORT_BASE + $CPO_PORT_COUNT - 1 ($CPO_PORT is the first), never a fixed one.
"""


@dataclass(frozen=True)
class Marker:
    present: bool
    data: dict[str, Any] | None = None  # the JSON object, when the marker holds one
    says_incomplete: bool = False


def read_marker(worktree: Path) -> Marker:
    """The marker's verdict. Any content is accepted; only `"task_completed": false` fails."""
    path = worktree / MARKER
    if not path.is_file():
        return Marker(present=False)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")[:100_000]
        data = json.loads(text)
    except (OSError, ValueError):
        return Marker(present=True)
    if not isinstance(data, dict):
        return Marker(present=True)
    return Marker(present=True, data=data, says_incomplete=data.get("task_completed") is False)


def agent_verdict(proc: ProcResult, outcome: AgentOutcome) -> tuple[str | None, str | None]:
    """What the process and the agent's own output say: (reason, error text) of a failure,
    or (None, None). `cpo parallel` judges by this alone; `cpo run` adds the marker."""
    if proc.interrupted:
        return "interrupted", "stopped by cpo"
    if proc.timed_out:
        return "timeout", f"no result after {proc.duration:.0f} s"
    if proc.idle_timed_out:
        return "idle_timeout", "no output from the agent for too long"
    if outcome.error_class:
        return outcome.error_class, outcome.error_text
    if outcome.reported_result and outcome.is_error:
        return "agent_error", outcome.error_text or outcome.final_text
    if proc.returncode != 0:
        tail = proc.stderr_tail.strip().splitlines()
        return f"exit_code_{proc.returncode}", tail[-1] if tail else None
    return None, None


def verdict(
    proc: ProcResult,
    outcome: AgentOutcome,
    marker_present: bool,
    marker_incomplete: bool,
    marker_data: Mapping[str, object] | None,
) -> tuple[str | None, str | None]:
    """The success rule (README, `cpo run` step 4).

    (None, None) on success, else (reason, error text).
    """
    reason, error = agent_verdict(proc, outcome)
    if reason is not None:
        return reason, error
    if not marker_present:
        return "no_completion_marker", "the agent ended without writing .claude-task-complete"
    if marker_incomplete:
        summary = marker_data.get("summary") if marker_data else None
        return "agent_error", f"the agent reported the task incomplete: {summary or ''}".strip()
    return None, None
