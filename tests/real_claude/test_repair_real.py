"""Repairs and nudges with the real `claude` CLI against the scripted Messages API.

A task's marker summary carries the `[script:repair]` tag: it reaches the repair agent's
prompt (cpo puts the wave's summaries there), so the server answers the repair agent from
the `repair` script. A nudged task's resumed session still holds its first prompt and its
tag, so the server goes on with the same script.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import git

from tests.realcli import make_spec, report, run_cpo, tasks_by_id

from .server import ScriptedServer, bash, text, write
from .test_cpo_real import DONE, MARKER, describe

pytestmark = pytest.mark.real_claude


def test_failed_validation_repaired_by_a_real_agent(
    git_repo: Path, api: ScriptedServer, cpo_env: dict[str, str]
) -> None:
    root = make_spec(
        git_repo,
        "TS-RR1",
        [{"task-001": {"body": "Write main.py using helper."}}],
        validation={1: "import main"},
    )
    summary = json.dumps({"task_completed": True, "summary": "main.py uses helper [script:repair]"})
    api.script(
        [
            write("{cwd}/main.py", "import helper\nprint(helper.VALUE)\n"),
            bash("git add main.py && git commit -q -m 'add main'"),
            write("{cwd}/" + MARKER, summary),
            text("main: done"),
        ],
        name="task-001",
    )
    api.script(
        [
            write("{cwd}/helper.py", "VALUE = 7\n"),
            bash("git add helper.py && git commit -q -m 'add helper'"),
            write("{cwd}/" + MARKER, DONE),
            text("fixed"),
        ],
        name="repair",
    )
    proc, out = run_cpo("run", str(root), "--json", "--timeout", "120", cwd=git_repo, env=cpo_env)
    assert proc.returncode == 0, describe(proc, api)
    assert out["status"] == "completed"
    assert api.remaining("repair") == 0 and api.exhausted == 0, api.debug_log()
    [repair] = report(root)["waves"][0]["repairs"]
    assert (repair["outcome"], repair["files_changed"]) == ("fixed", ["helper.py"])
    assert repair["session_id"] and repair["cost_usd"] and repair["cost_usd"] > 0
    assert repair["error"] is None and repair["summary"] == "scripted"
    branch = report(root)["integration_branch"]
    assert git(git_repo, "show", f"{branch}:helper.py") == "VALUE = 7"


def test_agent_that_forgot_the_marker_is_resumed_in_its_session(
    git_repo: Path, api: ScriptedServer, cpo_env: dict[str, str]
) -> None:
    root = make_spec(git_repo, "TS-RR2", [{"task-001": {"body": "Write a.txt."}}])
    api.script(
        [
            write("{cwd}/a.txt", "a\n"),
            text("a.txt written"),  # ends here: no commit, no marker
            bash("git add a.txt && git commit -q -m 'add a'"),  # after the nudge
            write("{cwd}/" + MARKER, DONE),
            text("done"),
        ],
        name="task-001",
    )
    proc, out = run_cpo("run", str(root), "--json", "--timeout", "120", cwd=git_repo, env=cpo_env)
    assert proc.returncode == 0, describe(proc, api)
    task = tasks_by_id(out)["task-001"]
    assert task["status"] == "completed"
    rec = report(root)["tasks"]["task-001"]
    [attempt] = rec["attempts"]
    [nudge] = attempt["nudges"]
    assert (nudge["why"], nudge["outcome"]) == ("no_completion_marker", "ok")
    # The real CLI went on in the same session: one id for the run and its continuation.
    assert nudge["session_id"] == attempt["session_id"]
    assert rec["leftovers_committed"] is False  # the resumed agent committed its own work
    nudged = [r for r in api.requests if "not committed" in json.dumps(r.body)]
    assert nudged, api.debug_log()
