"""Repairs of failed wave validations (cpo.run.repair), end to end with the scripted claude.

The repair agent is the scripted claude too: it follows the `@script` lines of its prompt,
and its prompt holds the wave's task summaries, so a task's marker summary scripts it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cpo.plan.model import ValidationStep
from cpo.run.repair import TaskWork, repair_prompt
from tests.conftest import git
from tests.runkit import cpo, make_spec, report

pytestmark = pytest.mark.usefixtures("fake_claude")

# main.py imports a module no task wrote: the wave's validation fails on the import.
BROKEN = "@script write main.py import helper\\nprint(helper.VALUE)\n@script commit add main\n"
VALIDATION = {1: "import main"}


def summary_marker(summary: str) -> str:
    """A marker directive whose summary, once in the repair prompt, is read as directives."""
    return "@script marker " + json.dumps({"task_completed": True, "summary": summary})


def progress(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("[PROGRESS]")]


def test_repair_agent_fixes_a_missing_import(git_repo: Path) -> None:
    fix = "main.py needs helper\n@script write helper.py VALUE = 7\n@script commit add helper"
    root = make_spec(
        git_repo,
        [{"task-001": BROKEN + summary_marker(fix)}, {"task-002": "@script marker"}],
        validation=VALIDATION,
    )
    proc = cpo("run", str(root), cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = report(root)
    wave = data["waves"][0]
    assert wave["status"] == "completed"
    assert wave["validation_exit_code"] == 0
    [repair] = wave["repairs"]
    assert repair["outcome"] == "fixed"
    assert repair["files_changed"] == ["helper.py"]
    assert "1 file changed" in repair["diff_stat"]
    assert repair["cost_usd"] is not None and repair["duration_seconds"] is not None
    assert repair["saved_branch"] is None
    # The fix is on the integration branch, on top of the merge, and wave 2 built on it.
    integration = data["integration_branch"]
    assert git(git_repo, "show", f"{integration}:helper.py") == "VALUE = 7"
    assert git(git_repo, "merge-base", "--is-ancestor", repair["commit"], integration) == ""
    assert data["tasks"]["task-002"]["status"] == "completed"
    lines = progress(proc.stdout)
    assert "[PROGRESS] wave=1 repair=1/1 status=started" in lines
    assert "[PROGRESS] wave=1 repair=1/1 status=fixed" in lines
    prompt_log = (root / "logs" / "wave-1-repair-1.log").read_text()
    assert "repair prompt" in prompt_log  # the agent's log names what it was given
    status = cpo("status", str(root), cwd=git_repo).stdout
    assert "wave 1: completed · repair 1: fixed" in status


def test_repairs_that_do_not_fix_it_stop_the_run(git_repo: Path) -> None:
    wrong = "main.py needs helper\n@script write helper.txt not python\n@script commit wrong"
    root = make_spec(
        git_repo,
        [{"task-001": BROKEN + summary_marker(wrong)}, {"task-002": "@script marker"}],
        validation=VALIDATION,
    )
    proc = cpo("run", str(root), "--repair", "2", cwd=git_repo)
    assert proc.returncode == 1
    data = report(root)
    wave = data["waves"][0]
    assert (wave["status"], wave["note"]) == ("failed", "validation")
    assert [r["outcome"] for r in wave["repairs"]] == ["still_failing", "still_failing"]
    integration = data["integration_branch"]
    merged = data["tasks"]["task-001"]["merge_commit"]
    for number, rec in enumerate(wave["repairs"], start=1):
        # Each repair's work is kept on its own branch; the integration branch holds
        # only the merged task.
        assert rec["saved_branch"] == f"{integration}-wave-1-repair-{number}"
        assert git(git_repo, "show", f"{rec['saved_branch']}:helper.txt") == "not python"
        assert rec["validation_exit_code"] == 1
    assert git(git_repo, "rev-parse", integration) == merged
    assert data["tasks"]["task-002"]["reason"] == "validation"
    assert "[PROGRESS] wave=1 repair=2/2 status=still_failing" in progress(proc.stdout)
    # The user fixes it by hand in the integration worktree; --resume goes on from there.
    integ = Path(data["integration_worktree"])
    (integ / "helper.py").write_text("VALUE = 1\n")
    git(integ, "add", "helper.py")
    git(integ, "commit", "-q", "-m", "fix by hand")
    assert cpo("run", str(root), "--resume", "--repair", "0", cwd=git_repo).returncode == 0
    assert report(root)["tasks"]["task-002"]["merged"] is True


def test_repair_zero_is_todays_stop(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": BROKEN + "@script marker"}], validation=VALIDATION)
    proc = cpo("run", str(root), "--repair", "0", cwd=git_repo)
    assert proc.returncode == 1
    assert report(root)["waves"][0]["repairs"] == []
    assert not (root / "logs" / "wave-1-repair-1.log").exists()
    again = cpo("run", str(root), "--resume", "--json", cwd=git_repo)  # default: 1 repair
    assert json.loads(again.stdout)["waves"][0]["repairs"] == ["no_change"]


def test_manifest_key_sets_the_repairs(git_repo: Path) -> None:
    root = make_spec(
        git_repo,
        [{"task-001": BROKEN + "@script marker"}],
        validation=VALIDATION,
        extra={"repair": 0},
    )
    assert cpo("run", str(root), cwd=git_repo).returncode == 1
    assert report(root)["waves"][0]["repairs"] == []


def test_repair_that_resets_the_branch_loses_no_merge(git_repo: Path) -> None:
    rewind = "oops\n@script write helper.py VALUE = 1\n@script git reset -q --hard HEAD~1"
    root = make_spec(
        git_repo, [{"task-001": BROKEN + summary_marker(rewind)}], validation=VALIDATION
    )
    proc = cpo("run", str(root), cwd=git_repo)
    assert proc.returncode == 1
    data = report(root)
    [repair] = data["waves"][0]["repairs"]
    assert repair["outcome"] == "rewrote_history"
    integration = data["integration_branch"]
    assert git(git_repo, "rev-parse", integration) == data["tasks"]["task-001"]["merge_commit"]


def test_repair_prompt_names_commands_output_and_work() -> None:
    text = repair_prompt(
        2,
        [ValidationStep("shell", "pytest -q"), ValidationStep("python", "import app")],
        "E   ModuleNotFoundError: No module named 'helper'",
        [TaskWork("task-001", "wrote main", ("main.py",)), TaskWork("task-002", None, ())],
        1,
        3,
    )
    assert "pytest -q" in text and "python -c 'import app'" in text
    assert "No module named 'helper'" in text
    assert "### task-001\nSummary: wrote main\nFiles: main.py" in text
    assert "### task-002\nSummary: (none given)\nFiles: (none)" in text
    assert "repair attempt 1 of 3" in text
