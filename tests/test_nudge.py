"""Nudges (cpo.run.nudge): an agent that stops early is resumed in its own session once,
before its task counts as failed; end to end with the scripted claude's `--resume`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cpo.agents.base import AgentRequest
from cpo.agents.claude import ClaudeBackend
from cpo.agents.codex import CodexBackend
from cpo.agents.gemini import GeminiBackend
from cpo.run.nudge import nudge_message
from tests.runkit import agent_prompts, cpo, make_spec, report

pytestmark = pytest.mark.usefixtures("fake_claude")

NO_MARKER = "@script write a.txt a\n@script commit add a"


def test_agent_without_marker_completes_after_a_nudge(git_repo: Path, tmp_path: Path) -> None:
    root = make_spec(git_repo, [{"task-001": NO_MARKER}])
    proc = cpo("run", str(root), "--json", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["tasks"][0]["nudges"] == 1
    t = report(root)["tasks"]["task-001"]
    assert t["status"] == "completed"
    [attempt] = t["attempts"]
    [nudge] = attempt["nudges"]
    assert (nudge["number"], nudge["why"], nudge["outcome"]) == (1, "no_completion_marker", "ok")
    # The same session went on: one id, and its transcript holds both messages.
    assert nudge["session_id"] == attempt["session_id"] == t["session_id"]
    first, second = agent_prompts(tmp_path / "home", t["worktree"], t["session_id"])
    assert NO_MARKER in first
    assert "without writing .claude-task-complete" in second
    # The attempt's cost counts both runs of the agent.
    assert t["cost_usd"] == pytest.approx(attempt["cost_usd"])
    assert attempt["cost_usd"] > nudge["cost_usd"] > 0
    log = (root / "logs" / "task-001.log").read_text()
    assert f"resuming session {t['session_id']}" in log


def test_uncommitted_work_is_named_in_the_nudge(git_repo: Path, tmp_path: Path) -> None:
    root = make_spec(git_repo, [{"task-001": "@script write a.txt a"}])
    assert cpo("run", str(root), cwd=git_repo).returncode == 0
    t = report(root)["tasks"]["task-001"]
    second = agent_prompts(tmp_path / "home", t["worktree"], t["session_id"])[1]
    assert "not committed" in second


def test_agent_stopped_by_the_idle_timeout_is_resumed(git_repo: Path, tmp_path: Path) -> None:
    root = make_spec(git_repo, [{"task-001": "@script write a.txt a\n@script hang"}])
    assert cpo("run", str(root), "--idle-timeout", "1.5", cwd=git_repo).returncode == 0
    t = report(root)["tasks"]["task-001"]
    [nudge] = t["attempts"][0]["nudges"]
    assert (nudge["why"], nudge["outcome"]) == ("idle_timeout", "ok")
    second = agent_prompts(tmp_path / "home", t["worktree"], t["session_id"])[1]
    assert "no output for 1.5s" in second and "not committed" in second
    assert t["files_changed"] == ["a.txt"]


def test_no_nudges_fails_as_before(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": NO_MARKER}])
    assert cpo("run", str(root), "--nudges", "0", cwd=git_repo).returncode == 1
    t = report(root)["tasks"]["task-001"]
    assert (t["status"], t["reason"]) == ("failed", "no_completion_marker")
    assert t["attempts"][0]["nudges"] == []


def test_a_nudge_that_does_not_help_fails_the_task(git_repo: Path) -> None:
    # Every run of this agent is told to fail: the nudge's run too.
    root = make_spec(git_repo, [{"task-001": "@script error cannot go on"}], extra={"nudges": 3})
    assert cpo("run", str(root), cwd=git_repo).returncode == 1
    t = report(root)["tasks"]["task-001"]
    assert t["reason"] == "agent_error"
    assert t["attempts"][0]["nudges"] == []  # an agent error is not a stop a message fixes


def test_backends_resume_with_their_own_cli_words() -> None:
    req = AgentRequest(
        task_id="t", wave=1, prompt="p", worktree=Path("."), parallel_dir=Path("."), resume="S1"
    )
    claude = ClaudeBackend().argv(req)
    assert claude[claude.index("--resume") + 1] == "S1"
    codex = CodexBackend().argv(req)
    assert codex[1:3] == ["exec", "resume"] and codex[-2:] == ["S1", "-"]
    assert "--sandbox" not in codex  # `exec resume` has none: `-c sandbox_mode=...`
    gemini = GeminiBackend().argv(req)
    assert gemini[gemini.index("--resume") + 1] == "S1"


def test_nudge_message_says_what_is_missing() -> None:
    idle = nudge_message("idle_timeout", uncommitted=False, idle=600)
    assert "no output for 10m" in idle and "not committed" not in idle
    assert "commit them" in nudge_message("no_completion_marker", uncommitted=True, idle=None)
