"""One duration type everywhere: task keys, manifest, config, `cpo parallel` files and flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from plandirs import cpo_manifest, task_md, write_dir
from runkit import cpo, make_spec, report

from cpo.adhoc.taskfile import parse_task_file as parse_adhoc
from cpo.duration import format_duration, parse_duration
from cpo.errors import PlanError
from cpo.plan.load import load_plan


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(90, 90.0), (2.5, 2.5), ("90", 90.0), ("90s", 90.0), ("20m", 1200.0), ("1.5h", 5400.0)],
)
def test_parse(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("-5", "must be more than 0 seconds (got '-5')"),
        (-5, "must be more than 0 seconds (got -5)"),
        ("0m", "must be more than 0 seconds"),
        (0, "must be more than 0 seconds"),
        ("soon", "expected seconds, or a number with s/m/h such as 90s, 20m, 1.5h, not 'soon'"),
        ("20 min", "expected seconds"),
        (True, "expected seconds"),
        (None, "expected seconds"),
        (float("inf"), "expected seconds"),
    ],
)
def test_parse_refuses(text: object, needle: str) -> None:
    with pytest.raises(ValueError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        parse_duration(text)


def test_zero_is_allowed_only_where_it_makes_sense() -> None:
    assert parse_duration("0", allow_zero=True) == 0.0
    with pytest.raises(ValueError, match="must be 0 seconds or more"):
        parse_duration("-1s", allow_zero=True)


@pytest.mark.parametrize(
    ("seconds", "text"), [(7200, "2h"), (1800, "30m"), (5400, "90m"), (90, "90s"), (2.5, "2.5s")]
)
def test_format_round_trips(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


def test_task_keys_and_manifest_take_every_form(tmp_path: Path) -> None:
    """Before: `timeout: 5s` in a task was "Input should be a valid number"."""
    root = write_dir(
        tmp_path / "p",
        manifest=cpo_manifest([{"id": "t1", "timeout": "20m"}, {"id": "t2", "estimate": 90}]),
        tasks={
            "t1.md": {"id": "t1", "estimate": "1.5h"},
            "t2.md": {"id": "t2", "timeout": "5s"},
        },
    )
    tasks = load_plan(root).tasks
    assert (tasks["t1"].timeout, tasks["t1"].estimate) == (1200.0, 5400.0)
    assert (tasks["t2"].timeout, tasks["t2"].estimate) == (5.0, 90.0)


def test_task_keys_refuse_zero_and_negative(tmp_path: Path) -> None:
    root = write_dir(
        tmp_path / "p",
        manifest=cpo_manifest([{"id": "t1", "timeout": -5}, {"id": "t2"}]),
        tasks={"t1.md": {"id": "t1"}, "t2.md": {"id": "t2", "estimate": "0s"}},
    )
    with pytest.raises(PlanError) as info:
        load_plan(root)
    assert [str(p) for p in info.value.problems] == [
        "manifest.json: waves[0].tasks[0].timeout: must be more than 0 seconds (got -5)",
        "tasks/t2.md: estimate: must be more than 0 seconds (got '0s')",
    ]


def test_validate_prints_durations_as_they_are_written(tmp_path: Path) -> None:
    root = write_dir(
        tmp_path / "p",
        tasks={"t1.md": task_md({"id": "t1", "timeout": 1800, "estimate": "90s"})},
    )
    done = cpo("validate", str(root), cwd=tmp_path)
    assert "timeout=30m estimate=90s" in done.stdout
    data = json.loads(cpo("validate", str(root), "--json", cwd=tmp_path).stdout)
    assert data["tasks"][0]["timeout"] == 1800.0  # JSON keeps seconds


def test_cpo_parallel_task_file_timeout() -> None:
    plan = parse_adhoc('{"tasks": [{"prompt": "p", "backend": "command", "timeout": "2m"}]}', "f")
    assert plan.file.tasks[0].timeout == 120.0


def test_run_flags_take_durations(git_repo: Path) -> None:
    """Before: `--timeout 20m` was rejected and `--timeout -5` accepted."""
    root = make_spec(git_repo, [{"t1": "Do t1."}])
    done = cpo(
        "run",
        str(root),
        "--backend",
        "command",
        "--agent-command",
        "touch .claude-task-complete",
        "--timeout",
        "20m",
        "--idle-timeout",
        "90s",
        "--retry-delay",
        "0",
        cwd=git_repo,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    options = report(root)["options"]
    assert (options["timeout"], options["idle_timeout"], options["backoff_base"]) == (1200, 90, 0)


@pytest.mark.parametrize(
    ("flag", "value", "needle"),
    [
        ("--timeout", "-5", "Invalid value for '--timeout': must be more than 0 seconds"),
        ("--timeout", "0", "Invalid value for '--timeout': must be more than 0 seconds"),
        ("--idle-timeout", "soon", "Invalid value for '--idle-timeout': expected seconds"),
        ("--retry-delay", "-1", "Invalid value for '--retry-delay': must be 0 seconds or more"),
    ],
)
def test_run_flags_refuse_bad_durations(git_repo: Path, flag: str, value: str, needle: str) -> None:
    root = make_spec(git_repo, [{"t1": "Do t1."}])
    done = cpo("run", str(root), "--dry-run", flag, value, cwd=git_repo)
    assert done.returncode == 2
    assert needle in done.stderr and "Traceback" not in done.stderr
