"""`cpo run PLAN.md` with the real `claude` CLI and a scripted API: a two-stream plan file.

Each section carries its task's `[script:<id>]` tag, so the scripted server answers each
CLI from its own task's script (see server.py and test_cpo_real.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import git

from cpo.planfile.doc import parse_plan
from cpo.planfile.edit import without_statuses
from tests.realcli import report, run_cpo, tasks_by_id

from .server import ScriptedServer, bash, text, write
from .test_cpo_real import DONE, MARKER, describe, need, task_script

pytestmark = pytest.mark.real_claude

PLAN = """\
# Two streams

## Progress Tracking

| Task | Stream | Name | Status | Date |
|------|--------|------|--------|------|
| A1   | api    | Create a | TASK:PENDING | |
| A2   | api    | Copy a   | TASK:PENDING | |
| D1   | docs   | Create d | TASK:PENDING | |

## Task A1: Create a
**Status**: TASK:PENDING

[script:A1] Create a.txt and commit it.

## Task A2: Copy a
**Status**: TASK:PENDING

[script:A2] Copy a.txt (made by A1) to a2.txt and commit it.

## Task D1: Create d
**Status**: TASK:PENDING

[script:D1] Create d.txt and commit it.
"""


def test_two_stream_plan_file_run_by_the_real_cli(
    git_repo: Path, api: ScriptedServer, cpo_env: dict[str, str]
) -> None:
    need("run")
    plan = git_repo / "PLAN.md"
    plan.write_text(PLAN)
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "plan")
    api.script(task_script("a.txt", "alpha\n", "add a"), name="A1")
    # Only works in the api stream's worktree after A1: it reads A1's file.
    api.script(
        [
            bash("cp a.txt a2.txt && git add a2.txt && git commit -q -m 'add a2'"),
            write("{cwd}/" + MARKER, DONE),
            text("add a2: done"),
        ],
        name="A2",
    )
    api.script(task_script("d.txt", "delta\n", "add d"), name="D1")
    proc, summary = run_cpo(
        "run",
        str(plan),
        "--json",
        "--max-concurrent",
        "2",
        "--timeout",
        "120",
        cwd=git_repo,
        env=cpo_env,
    )
    assert proc.returncode == 0, describe(proc, api)
    tasks = tasks_by_id(summary)
    assert {t: tasks[t]["status"] for t in tasks} == dict.fromkeys(["A1", "A2", "D1"], "completed")
    assert api.exhausted == 0 and all(api.remaining(t) == 0 for t in tasks), api.debug_log()

    after = plan.read_text()
    assert {r.status for r in parse_plan(after).rows} == {"TASK:COMPLETE"}
    assert without_statuses(after) == without_statuses(PLAN)
    rep = report(git_repo / "PLAN.cpo")
    assert rep["tasks"]["A2"]["start_point"] == rep["tasks"]["A1"]["head"]
    assert rep["tasks"]["A1"]["branch"] == "stream/PLAN/api"
    assert git(git_repo, "show", "integration/PLAN:a2.txt") == "alpha"
    assert git(git_repo, "show", "integration/PLAN:d.txt") == "delta"
