"""`cpo run` and `cpo parallel` end to end with the real `claude` CLI and a scripted API.

Every task prompt carries a `[script:<task id>]` tag, so the one scripted server answers
each concurrently running CLI from that task's own script (see server.py). The CLI is
found by cpo the way a user's is: a `claude` first on PATH.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import git

from tests.realcli import leftover_processes, make_spec, report, run_cpo, tasks_by_id

from .server import ScriptedServer, Turn, bash, error, stall, text, write

pytestmark = pytest.mark.real_claude

MARKER = ".claude-task-complete"
DONE = '{"task_completed": true, "summary": "scripted"}'


@functools.cache
def cpo_has(command: str) -> bool:
    proc = subprocess.run(
        [sys.executable, "-m", "cpo", command, "--help"], capture_output=True, text=True, timeout=60
    )
    return proc.returncode == 0


def need(command: str) -> None:
    """Skip (at run time, not for good) while the cpo command is still being built."""
    if not cpo_has(command):
        pytest.skip(f"cpo {command} not available yet")


def task_script(path: str, content: str, message: str) -> list[Turn]:
    """Write a file, commit it, write the marker, answer: a well-behaved task."""
    return [
        write("{cwd}/" + path, content),
        bash(f"git add {path} && git commit -q -m '{message}'"),
        write("{cwd}/" + MARKER, DONE),
        text(f"{message}: done"),
    ]


def describe(proc: subprocess.CompletedProcess[str], api: ScriptedServer) -> str:
    return (
        f"exit {proc.returncode}\nstdout: {proc.stdout[-4000:]}\n"
        f"stderr: {proc.stderr[-3000:]}\nAPI requests:\n{api.debug_log()}"
    )


# -- cpo run ----------------------------------------------------------------------------
def test_two_wave_spec_built_by_real_tool_calls_and_merged(
    git_repo: Path, api: ScriptedServer, cpo_env: dict[str, str]
) -> None:
    need("run")
    root = make_spec(
        git_repo,
        "TS-R1",
        [
            {"task-001": {"body": "Create src/a.txt."}, "task-002": {"body": "Create src/b.txt."}},
            {
                "task-003": {
                    "body": "Create src/c.txt from a and b.",
                    "deps": ["task-001", "task-002"],
                }
            },
        ],
        validation={1: "test -f src/a.txt && test -f src/b.txt", 2: "test -f src/c.txt"},
    )
    api.script(task_script("src/a.txt", "alpha\n", "add a"), name="task-001")
    api.script(task_script("src/b.txt", "beta\n", "add b"), name="task-002")
    # Wave 2 only works if wave 1 was merged before it branched: it reads both files.
    api.script(
        [
            bash(
                "cat src/a.txt src/b.txt > src/c.txt && git add src/c.txt"
                " && git commit -q -m 'add c'"
            ),
            write("{cwd}/" + MARKER, DONE),
            text("add c: done"),
        ],
        name="task-003",
    )
    proc, summary = run_cpo(
        "run",
        str(root),
        "--json",
        "--max-concurrent",
        "2",
        "--timeout",
        "120",
        cwd=git_repo,
        env=cpo_env,
    )
    assert proc.returncode == 0, describe(proc, api)
    assert summary["status"] == "completed"
    tasks = tasks_by_id(summary)
    assert {t: tasks[t]["status"] for t in tasks} == dict.fromkeys(
        ["task-001", "task-002", "task-003"], "completed"
    )
    assert api.exhausted == 0 and all(api.remaining(t) == 0 for t in tasks), api.debug_log()

    branch = summary["integration_branch"]
    assert git(git_repo, "show", f"{branch}:src/c.txt") == "alpha\nbeta"
    subjects = git(git_repo, "log", "--format=%s", branch).splitlines()
    assert {"add a", "add b", "add c"} <= set(subjects)
    assert git(git_repo, "rev-parse", "main") == git(git_repo, "rev-parse", "HEAD")

    rep = report(root)
    assert rep["cpo_report_version"] == 1
    for tid in tasks:
        rec = rep["tasks"][tid]
        assert rec["commits"] >= 1 and rec["merged"] is True
        assert rec["marker"]["task_completed"] is True
        # What the real CLI's result line told cpo.
        assert rec["session_id"] and rec["turns"] in (3, 4)
        assert rec["cost_usd"] and rec["cost_usd"] > 0
        assert rec["input_tokens"] and rec["output_tokens"]
    assert [w["status"] for w in rep["waves"]] == ["completed", "completed"]


def test_task_that_never_writes_the_marker(
    git_repo: Path, api: ScriptedServer, cpo_env: dict[str, str]
) -> None:
    need("run")
    root = make_spec(git_repo, "TS-R2", [{"task-001": {"body": "Forget the marker."}}])
    api.script([write("{cwd}/a.txt", "a\n"), text("finished, no marker")], name="task-001")
    proc, summary = run_cpo(
        "run", str(root), "--json", "--timeout", "60", "--nudges", "0", cwd=git_repo, env=cpo_env
    )
    assert proc.returncode == 1, describe(proc, api)
    task = tasks_by_id(summary)["task-001"]
    assert (task["status"], task["reason"]) == ("failed", "no_completion_marker")
    # The uncommitted file is saved on the task branch, not lost.
    assert report(root)["tasks"]["task-001"]["leftovers_committed"] is True


def test_max_turns_reached(git_repo: Path, api: ScriptedServer, cpo_env: dict[str, str]) -> None:
    need("run")
    root = make_spec(
        git_repo, "TS-R3", [{"task-001": {"body": "Take too many turns.", "max_turns": 1}}]
    )
    api.script(
        [
            write("{cwd}/a.txt", "a\n"),
            write("{cwd}/b.txt", "b\n"),
            write("{cwd}/" + MARKER, DONE),
            text("done"),
        ],
        name="task-001",
    )
    proc, summary = run_cpo(
        "run", str(root), "--json", "--timeout", "60", cwd=git_repo, env=cpo_env
    )
    assert proc.returncode == 1, describe(proc, api)
    task = tasks_by_id(summary)["task-001"]
    assert (task["status"], task["reason"]) == ("failed", "max_turns")


def test_overload_retried_by_the_cli_then_success(
    git_repo: Path, api: ScriptedServer, cpo_env: dict[str, str]
) -> None:
    need("run")
    root = make_spec(git_repo, "TS-R4", [{"task-001": {"body": "Survive an overload."}}])
    api.script([error(529), error(529), *task_script("a.txt", "a\n", "add a")], name="task-001")
    proc, summary = run_cpo(
        "run", str(root), "--json", "--timeout", "60", cwd=git_repo, env=cpo_env
    )
    assert proc.returncode == 0, describe(proc, api)
    task = tasks_by_id(summary)["task-001"]
    assert task["status"] == "completed" and task["attempts"] == 1
    log = (root / "logs" / "task-001.jsonl").read_text()
    assert log.count('"subtype":"api_retry"') == 2


def test_persistent_overload_is_classified_overloaded(
    git_repo: Path, api: ScriptedServer, cpo_env: dict[str, str]
) -> None:
    need("run")
    root = make_spec(git_repo, "TS-R5", [{"task-001": {"body": "Never get through."}}])
    api.script([error(529, sticky=True)], name="task-001")
    env = dict(cpo_env, CLAUDE_CODE_MAX_RETRIES="1")
    proc, summary = run_cpo(
        "run", str(root), "--json", "--timeout", "60", "--retries", "0", cwd=git_repo, env=env
    )
    assert proc.returncode == 1, describe(proc, api)
    task = tasks_by_id(summary)["task-001"]
    assert (task["status"], task["reason"]) == ("failed", "overloaded")
    assert "529" in (task["error"] or "")


def test_auth_failure_stops_launches(
    git_repo: Path, api: ScriptedServer, cpo_env: dict[str, str]
) -> None:
    need("run")
    root = make_spec(
        git_repo,
        "TS-R6",
        [
            {
                "task-001": {"body": "One."},
                "task-002": {"body": "Two."},
                "task-003": {"body": "Three."},
            },
            {"task-004": {"body": "Four.", "deps": ["task-001"]}},
        ],
    )
    env = dict(cpo_env)
    del env["ANTHROPIC_API_KEY"]
    proc, summary = run_cpo(
        "run",
        str(root),
        "--json",
        "--max-concurrent",
        "1",
        "--timeout",
        "60",
        cwd=git_repo,
        env=env,
    )
    assert proc.returncode == 1, describe(proc, api)
    tasks = tasks_by_id(summary)
    failed = [t for t in tasks.values() if t["status"] == "failed"]
    assert [t["reason"] for t in failed] == ["auth"], summary
    assert "Not logged in" in (failed[0]["error"] or "")
    others = [t for t in tasks.values() if t["status"] != "failed"]
    assert len(others) == 3 and {t["status"] for t in others} == {"skipped"}, summary
    # Only one agent was ever started.
    assert sorted(p.name for p in (root / "logs").glob("task-*.jsonl")) == [
        f"{failed[0]['id']}.jsonl"
    ]
    assert api.main_requests == []


def test_unknown_agent(git_repo: Path, api: ScriptedServer, cpo_env: dict[str, str]) -> None:
    need("run")
    root = make_spec(
        git_repo,
        "TS-R7",
        [{"task-001": {"body": "Use a missing agent.", "agent": "no-such-agent"}}],
    )
    api.script([text("must not be asked")], name="task-001")
    proc, summary = run_cpo(
        "run", str(root), "--json", "--timeout", "60", cwd=git_repo, env=cpo_env
    )
    # Preflight looks the name up where Claude Code keeps agents: nothing starts.
    assert proc.returncode == 2, describe(proc, api)
    assert summary["status"] == "error"
    assert "agent 'no-such-agent' (task-001) is not installed" in " ".join(summary["errors"])
    assert api.main_requests == []


def test_stalled_api_is_killed_by_the_timeout_with_no_process_left(
    git_repo: Path, api: ScriptedServer, cpo_env: dict[str, str], tmp_path: Path
) -> None:
    need("run")
    root = make_spec(git_repo, "TS-R8", [{"task-001": {"body": "Wait forever."}}])
    api.script([stall()], name="task-001")
    proc, summary = run_cpo("run", str(root), "--json", "--timeout", "4", cwd=git_repo, env=cpo_env)
    assert proc.returncode == 1, describe(proc, api)
    task = tasks_by_id(summary)["task-001"]
    assert (task["status"], task["reason"]) == ("failed", "timeout")
    assert api.stalled == 1, api.debug_log()
    time.sleep(0.5)
    assert leftover_processes(tmp_path) == []


# -- cpo parallel -------------------------------------------------------------------------
def test_parallel_runs_real_claude_tasks(
    tmp_path: Path, api: ScriptedServer, cpo_env: dict[str, str]
) -> None:
    need("parallel")
    dirs = {}
    for name in ("one", "two"):
        d = tmp_path / name
        d.mkdir()
        git(d, "init", "-q", "-b", "main")
        dirs[name] = d
    api.script([write("{cwd}/out.txt", "from one\n"), text("one done")], name="p-one")
    api.script([error(529, sticky=True)], name="p-two")
    spec = {
        "tasks": [
            {
                "id": "p-one",
                "backend": "claude",
                "prompt": "[script:p-one] write out.txt",
                "workdir": str(dirs["one"]),
            },
            {
                "id": "p-two",
                "backend": "claude",
                "prompt": "[script:p-two] overloaded",
                "workdir": str(dirs["two"]),
            },
        ],
        "max_parallel": 2,
    }
    tasks_file = tmp_path / "tasks.json"
    tasks_file.write_text(json.dumps(spec))
    env = dict(cpo_env, CLAUDE_CODE_MAX_RETRIES="1")
    proc, summary = run_cpo("parallel", "-f", str(tasks_file), "--json", cwd=tmp_path, env=env)
    assert proc.returncode == 1, describe(proc, api)
    assert (summary["total_tasks"], summary["completed"], summary["failed"]) == (2, 1, 1)
    results = {r["task_id"]: r for r in summary["results"]}
    assert results["p-one"]["exit_code"] == 0 and not results["p-one"]["error"]
    assert results["p-one"]["output"] == "one done"  # the real CLI's final text
    assert (dirs["one"] / "out.txt").read_text() == "from one\n"
    assert results["p-two"]["exit_code"] != 0
    error_text = results["p-two"]["error"] or ""
    assert error_text.startswith("overloaded") and "529" in error_text
    assert leftover_processes(tmp_path) == []


def test_task_reads_the_included_env_file_and_serves_on_its_port(
    git_repo: Path, api: ScriptedServer, cpo_env: dict[str, str]
) -> None:
    """Issue 15: an ignored `.env` reaches the worktree; the agent's server uses $CPO_PORT."""
    need("run")
    (git_repo / ".gitignore").write_text(".env\n")
    (git_repo / ".worktreeinclude").write_text(".env\n")
    root = make_spec(git_repo, "TS-R9", [{"task-001": {"body": "Serve, note the greeting."}}])
    (git_repo / ".env").write_text("GREETING=hello-from-env\n")
    serve = (
        "python3 -c 'import os, socket; s = socket.socket(); "
        's.bind(("127.0.0.1", int(os.environ["CPO_PORT"]))); s.listen(); print("ok")\''
    )
    api.script(
        [
            bash(
                f'. ./.env && {serve} && echo "$GREETING $CPO_PORT" > out.txt'
                " && git add out.txt && git commit -q -m 'note'"
            ),
            write("{cwd}/" + MARKER, DONE),
            text("done"),
        ],
        name="task-001",
    )
    proc, summary = run_cpo(
        "run", str(root), "--json", "--timeout", "120", cwd=git_repo, env=cpo_env
    )
    assert proc.returncode == 0, describe(proc, api)
    greeting, port = git(git_repo, "show", f"{summary['integration_branch']}:out.txt").split()
    assert greeting == "hello-from-env" and 20000 <= int(port) <= 29999
