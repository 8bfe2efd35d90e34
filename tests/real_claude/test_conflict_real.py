"""A merge conflict resolved by `--on-conflict rerun`, with the real `claude` CLI under
`cpo run` and the scripted Messages API (issue 19).

Two wave-1 tasks both create shared.txt. task-001 merges first (manifest order); task-002's
merge conflicts, so it runs again on top of task-001's work, its prompt naming the file and
the task to build on; this time its agent appends, and the wave completes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import git

from tests.realcli import make_spec, report, run_cpo, tasks_by_id

from .server import ScriptedServer, bash, text, write
from .test_cpo_real import DONE, MARKER, describe, task_script

pytestmark = pytest.mark.real_claude

SECTION = "=== MERGE CONFLICT: BUILD ON THE WORK ALREADY MERGED ==="


def test_a_conflict_is_predicted_then_rerun_on_top_of_the_merged_work(
    git_repo: Path, api: ScriptedServer, cpo_env: dict[str, str]
) -> None:
    root = make_spec(
        git_repo,
        "TS-RC1",
        [
            {
                "task-001": {"body": "Create shared.txt with the line one."},
                "task-002": {"body": "Add the line two to shared.txt."},
            }
        ],
        validation={1: "grep -qx one shared.txt && grep -qx two shared.txt"},
    )
    api.script(task_script("shared.txt", "one\n", "add one"), name="task-001")
    api.script(
        [
            # First run, from the wave's start: it creates the file too, and conflicts.
            *task_script("shared.txt", "two\n", "add two"),
            # The rerun, from the integration head: the file holds task-001's line.
            bash("printf 'two\\n' >> shared.txt && git add shared.txt && git commit -q -m 'two'"),
            write("{cwd}/" + MARKER, DONE),
            text("built on task-001: done"),
        ],
        name="task-002",
    )
    proc, summary = run_cpo(
        "run",
        str(root),
        "--json",
        "--on-conflict",
        "rerun",
        "--max-concurrent",
        "2",
        "--timeout",
        "120",
        cwd=git_repo,
        env=cpo_env,
    )
    assert proc.returncode == 0, describe(proc, api)
    assert summary["status"] == "completed"
    assert api.exhausted == 0 and api.remaining("task-002") == 0, api.debug_log()
    branch = summary["integration_branch"]
    assert git(git_repo, "show", f"{branch}:shared.txt") == "one\ntwo"

    t2 = report(root)["tasks"]["task-002"]
    assert tasks_by_id(summary)["task-002"]["status"] == "completed"
    assert t2["merged"] and len(t2["attempts"]) == 2
    # Predicted when it first finished; the rerun's own prediction is clean.
    assert "predicted conflict with task-001 in shared.txt" in Path(t2["log"]).read_text()
    assert t2["predicted_conflicts"] == []
    (event,) = t2["conflicts"]
    assert (event["action"], event["outcome"], event["files"]) == (
        "rerun",
        "rerun",
        ["shared.txt"],
    )
    saved = t2["attempts"][0]["saved_branch"]
    assert git(git_repo, "show", f"{saved}:shared.txt") == "two"
    # The rerun's agent was told, through the real CLI, what to build on.
    told = [
        r for r in api.main_requests if r.script == "task-002" and SECTION in json.dumps(r.body)
    ]
    assert told, api.debug_log()
    assert "task-001" in json.dumps(told[0].body) and "shared.txt" in json.dumps(told[0].body)
