"""What cpo says: one JSON document per --json command in every mode, exit codes of the
dry run, next steps that work, status words, validation logs, the manifest's bytes."""

from __future__ import annotations

import json
import os
import shlex
import time
from pathlib import Path

import pytest

from tests.conftest import git
from tests.runkit import cpo, make_spec, report

DONE = "@script write {f} x\n@script commit add {f}\n@script marker"


def _spec(repo: Path, **kw: object) -> Path:
    return make_spec(
        repo, [{"task-001": DONE.format(f="a.txt"), "task-002": DONE.format(f="b.txt")}], **kw
    )  # type: ignore[arg-type]


# -- 1. --json: exactly one JSON document, whatever happens -------------------------------
def test_every_json_command_prints_one_document_in_every_mode(
    git_repo: Path, fake_claude: Path, tmp_path: Path
) -> None:
    root = _spec(git_repo)
    nowhere = tmp_path / "nowhere"
    bad = tmp_path / "bad"
    (bad / "tasks").mkdir(parents=True)
    (bad / "manifest.json").write_text('{"waves": []}')
    cases = [
        (("validate", str(root), "--json"), 0),
        (("validate", str(bad), "--json"), 1),
        (("validate", str(nowhere), "--json"), 2),
        (("status", str(root), "--json"), 2),  # no run yet
        (("status", str(nowhere), "--json"), 2),
        (("run", str(root), "--dry-run", "--json"), 0),
        (("run", str(root), "--dry-run", "--json", "--skip", "task-02"), 2),
        (("run", str(root), "--json", "--max-concurrent", "0"), 2),  # a usage error
        (("run", str(nowhere), "--json"), 2),
        (("config", "show", "--json"), 0),
        (("parallel", "-f", str(nowhere), "--json"), 2),
    ]
    for args, code in cases:
        out = cpo(*args, cwd=git_repo)
        assert out.returncode == code, (args, out.stdout, out.stderr)
        json.loads(out.stdout)  # one document, nothing else
    (git_repo / "dirty.txt").write_text("x")
    for args in (("run", str(root), "--dry-run", "--json"), ("run", str(root), "--json")):
        out = cpo(*args, cwd=git_repo)
        assert out.returncode == 2
        doc = json.loads(out.stdout)
        assert "uncommitted changes" in json.dumps(doc)
    (git_repo / "dirty.txt").unlink()
    done = cpo("run", str(root), "--json", cwd=git_repo)
    assert json.loads(done.stdout)["status"] == "completed"
    assert (
        json.loads(cpo("status", str(root), "--json", cwd=git_repo).stdout)["status"] == "completed"
    )


def test_status_json_with_no_run_says_how_to_start_one(tmp_path: Path) -> None:
    folder = tmp_path / "my spec"
    folder.mkdir()
    doc = json.loads(cpo("status", str(folder), "--json", cwd=tmp_path).stdout)
    assert doc["next_step"].endswith(f"cpo run {shlex.quote(str(folder))}")


# -- 2. and 9. the dry run: exit code, lock, launch order, notes -----------------------------
def test_dry_run_exits_2_when_the_run_would_stop(git_repo: Path, fake_claude: Path) -> None:
    root = _spec(git_repo)
    (git_repo / "dirty.txt").write_text("x")
    out = cpo("run", str(root), "--dry-run", cwd=git_repo)
    assert out.returncode == 2
    assert "would stop the run: the working tree has uncommitted changes" in out.stdout


def test_dry_run_names_a_live_runs_lock(git_repo: Path, fake_claude: Path) -> None:
    from cpo.run.lock import RunLock

    root = _spec(git_repo)
    git(git_repo, "branch", "integration/TS-0042")  # as a live run would have made it
    lock = RunLock(root)
    lock.acquire()
    try:
        out = cpo("run", str(root), "--dry-run", cwd=git_repo)
    finally:
        lock.release()
    assert out.returncode == 2
    assert f"is being run by another cpo (pid {os.getpid()}" in out.stdout
    assert "already exists" not in out.stdout


def test_dry_run_leaves_skipped_tasks_out_and_says_the_notes(
    git_repo: Path, fake_claude: Path
) -> None:
    root = _spec(git_repo)
    (git_repo / ".cpo").mkdir()
    (git_repo / ".cpo" / "config.yaml").write_text("paralel:\n  max_workers: 2\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "config")
    out = cpo("run", str(root), "--dry-run", "--skip", "task-002", cwd=git_repo)
    assert out.returncode == 0, out.stderr
    assert "(by manifest order): task-001\n" in out.stdout
    assert "paralel" in out.stderr and "note:" in out.stderr
    doc = json.loads(
        cpo("run", str(root), "--dry-run", "--skip", "task-002", "--json", cwd=git_repo).stdout
    )
    assert doc["launch_order"] == ["task-001"] and any("paralel" in n for n in doc["notes"])


# -- 11. did-you-mean and generated scripts ----------------------------------------------
def test_skip_of_a_misspelt_task_suggests_the_id(git_repo: Path, fake_claude: Path) -> None:
    root = _spec(git_repo)
    out = cpo("run", str(root), "--skip", "task-02", cwd=git_repo)
    assert out.returncode == 2 and "did you mean 'task-002'?" in out.stderr


def test_generated_run_script_keeps_the_options_given(git_repo: Path, tmp_path: Path) -> None:
    root = _spec(git_repo)
    ws = tmp_path / "my ws"
    out = cpo(
        "run",
        str(root),
        "--generate-only",
        "-j",
        "4",
        "--workspace-root",
        str(ws),
        "--timeout",
        "20m",
        "--no-fail-fast",
        cwd=git_repo,
    )
    assert out.returncode == 0, out.stderr
    script = (root / "scripts" / "run-parallel.sh").read_text()
    line = next(x for x in script.splitlines() if x.startswith("exec cpo run"))
    assert shlex.split(line)[3:] == [
        str(root),
        *("--max-concurrent", "4", "--no-fail-fast", "--timeout", "1200"),
        *("--workspace-root", str(ws), "$@"),
    ]


# -- 3. next steps ---------------------------------------------------------------------
def test_fail_fast_points_at_the_task_that_failed(git_repo: Path, fake_claude: Path) -> None:
    root = make_spec(git_repo, [{"task-001": "@script sleep 30", "task-002": "@script exit 3"}])
    out = cpo("run", str(root), "--fail-fast", cwd=git_repo)
    assert out.returncode == 1
    r = report(root)
    assert r["tasks"]["task-001"]["status"] == "interrupted"
    assert "for task-002 (" in r["next_step"]
    assert "interrupted (interrupted)" not in out.stdout


def test_a_lost_report_still_lets_clean_and_resume_say_something_true(
    git_repo: Path, fake_claude: Path
) -> None:
    root = make_spec(git_repo, [{"task-001": DONE.format(f="a.txt"), "task-002": "@script exit 3"}])
    assert cpo("run", str(root), cwd=git_repo).returncode == 1
    (root / "report.json").write_text("{not json")
    cleaned = cpo("clean", str(root), "--force", cwd=git_repo)
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert "names taken from the plan" in cleaned.stdout and "deleted branch" in cleaned.stdout
    assert git(git_repo, "branch", "--list") == "* main"
    # a missing report with the earlier run's branches still there
    (root / "report.json").unlink()  # moved aside, as the error about it says
    assert cpo("run", str(root), cwd=git_repo).returncode == 1
    (root / "report.json").unlink()
    resumed = cpo("run", str(root), "--resume", cwd=git_repo)
    assert resumed.returncode == 2
    assert (
        "is missing" in resumed.stderr and f"cpo clean {shlex.quote(str(root))}" in resumed.stderr
    )
    assert "continue the earlier run with --resume" not in resumed.stderr


# -- 8. status words -------------------------------------------------------------------
def test_no_integration_never_says_validating(git_repo: Path, fake_claude: Path) -> None:
    root = _spec(git_repo, validation={1: "true"})
    out = cpo("run", str(root), "--no-integration", cwd=git_repo)
    assert out.returncode == 0, out.stderr
    assert "status=validating" not in out.stdout
    assert "git branch --list" in report(root)["next_step"]


def test_a_task_that_never_started_prints_no_progress_line(
    git_repo: Path, fake_claude: Path
) -> None:
    root = make_spec(git_repo, [{"task-001": "@script auth", "task-002": DONE.format(f="b.txt")}])
    out = cpo("run", str(root), "-j", "1", cwd=git_repo)
    assert "status=pending" not in out.stdout and "error=None" not in out.stdout
    assert "task=task-002 status=skipped error=auth" in out.stdout


def test_a_killed_runs_elapsed_time_runs_to_its_last_sign_of_life(tmp_path: Path) -> None:
    from cpo.commands.status import clock_for, read_status, task_elapsed
    from cpo.run.report import Report, TaskRecord

    start = "2026-01-01T00:00:00+00:00"
    task = TaskRecord(id="a", wave=1, status="running", started_at=start)
    rep = Report(
        cpo_version="0",
        spec_id="TS",
        parallel_dir=str(tmp_path),
        started_at=start,
        tasks={"a": task},
    )
    (tmp_path / "report.json").write_text(rep.model_dump_json())
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "a.log").write_text("working\n")
    six = time.mktime(time.strptime("2026-01-01 00:00:06", "%Y-%m-%d %H:%M:%S")) - time.timezone
    os.utime(tmp_path / "report.json", (six - 3, six - 3))
    os.utime(tmp_path / "logs" / "a.log", (six, six))
    st = read_status(tmp_path)
    assert st.live.state == "stopped"
    assert st.live.elapsed_seconds == pytest.approx(6, abs=1)
    assert task_elapsed(st.report, clock_for(st.report, "stopped", tmp_path))["a"] == pytest.approx(
        6, abs=1
    )


# -- 6. validation log -------------------------------------------------------------------
def test_wave_validation_log_has_command_exit_code_and_output(
    git_repo: Path, fake_claude: Path
) -> None:
    root = _spec(git_repo, validation={1: ["echo checking", "test -s seen.txt"]})
    assert cpo("run", str(root), cwd=git_repo).returncode == 1
    log = (root / "logs" / "wave-1-validation.log").read_text()
    assert "$ echo checking\nchecking\n# exit code 0 after" in log
    assert "$ test -s seen.txt\n(no output)\n# exit code 1 after" in log and "(failed)" in log
    assert "wave-1-validation.log" in report(root)["next_step"]


# -- 7. the manifest's bytes --------------------------------------------------------------
WAVES = '"waves": [{"number": 1, "tasks": ["task-001"]}]'
HAND_WRITTEN = [
    '{\n    "tech_spec_id": "TS-0042", "name": "spec",\n    ' + WAVES + "\n}",
    '{"tech_spec_id": "TS-0042", ' + WAVES + "}\n",
    '{\n\t"tech_spec_id": "TS-0042",\n\t"execution": {"status": "old"},\n\t' + WAVES + "\n}\n",
]


@pytest.mark.parametrize("text", HAND_WRITTEN)
def test_only_the_execution_block_of_the_manifest_changes(text: str) -> None:
    from cpo.run.execblock import set_execution_block

    block = {"status": "completed", "waves": [{"number": 1, "status": "completed"}]}
    out = set_execution_block(text, block)
    assert json.loads(out)["execution"] == block
    data = json.loads(text)
    data.pop("execution", None)
    assert {k: v for k, v in json.loads(out).items() if k != "execution"} == data
    again = set_execution_block(out, {"status": "failed"})
    assert set_execution_block(again, block) == out  # the rest never drifts
    if "execution" in text:
        head, _, tail = text.partition('{"status": "old"}')
        assert out.startswith(head) and out.endswith(tail)
    else:
        cut = text.rstrip().rfind("}")
        assert out.startswith(text[:cut].rstrip()) and out.endswith(text[cut:])


def test_a_run_keeps_a_hand_formatted_manifest(git_repo: Path, fake_claude: Path) -> None:
    root = _spec(git_repo)
    text = (
        '{\n    "tech_spec_id": "TS-0042",   "name": "spec",\n    "waves": [\n'
        '        {"number": 1, "tasks": ["task-001", "task-002"]}\n    ]\n}'
    )
    (root / "manifest.json").write_text(text)
    assert cpo("run", str(root), cwd=git_repo).returncode == 0
    out = (root / "manifest.json").read_text()
    assert out.startswith(text[:-2] + ',\n    "execution": {\n        "status"')
    assert out.endswith("\n    }\n}")
