"""`cpo run` and `cpo parallel` scenarios with a real agent CLI and its scripted API.

Each real-CLI suite (tests/real_codex, tests/real_gemini) calls these with its `Kit`: how
its scripted API spells a file write, a shell command and a final text, and what its CLI
does on its own about a rate limit. The CLI is found by cpo the way a user's is: first on
PATH.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cpo.git import MARKER
from tests.conftest import git
from tests.realcli import (
    describe,
    fresh_repos,
    leftover_processes,
    make_spec,
    report,
    run_cpo,
    tasks_by_id,
)
from tests.realcli_api import ScriptedApi, Turn, error, stall, text

DONE = '{"task_completed": true, "summary": "scripted"}'
FAST_RETRY = ("--retry-delay", "0.1")


@dataclass(frozen=True)
class Kit:
    backend: str
    write: Callable[[str, str], Turn]  # (path relative to the worktree, content)
    shell: Callable[[str], Turn]
    run_flags: tuple[str, ...] = ()  # e.g. a --sandbox-mode for `cpo run`
    task_fields: dict[str, Any] = field(default_factory=dict)  # the same for `cpo parallel`
    cli_retries_rate_limit: bool = False

    def run(
        self, root: Path, *args: str, repo: Path, env: dict[str, str]
    ) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        return run_cpo("run", str(root), "--json", *self.run_flags, *args, cwd=repo, env=env)

    def task(self, path: str, content: str, message: str) -> list[Turn]:
        """Write a file, commit it, write the marker, answer: a well-behaved task."""
        return [
            self.write(path, content),
            self.shell(f"git add {path} && git commit -q -m '{message}'"),
            self.write(MARKER, DONE),
            text(f"{message}: done"),
        ]

    def spec(
        self, repo: Path, spec_id: str, waves: list[dict[str, dict[str, Any]]], **kw: Any
    ) -> Path:
        return make_spec(repo, spec_id, waves, agent=self.backend, **kw)


def two_wave_spec_merged(kit: Kit, repo: Path, api: ScriptedApi, env: dict[str, str]) -> None:
    root = kit.spec(
        repo,
        "TS-R1",
        [
            {"task-001": {"body": "Create src/a.txt."}, "task-002": {"body": "Create src/b.txt."}},
            {"task-003": {"body": "Join a and b.", "deps": ["task-001", "task-002"]}},
        ],
        validation={1: "test -f src/a.txt && test -f src/b.txt", 2: "test -f src/c.txt"},
    )
    api.script(kit.task("src/a.txt", "alpha\n", "add a"), name="task-001")
    api.script(kit.task("src/b.txt", "beta\n", "add b"), name="task-002")
    # Wave 2 only works if wave 1 was merged before it branched: it reads both files.
    api.script(
        [
            kit.shell("cat src/a.txt src/b.txt > src/c.txt && git add src/c.txt"),
            kit.shell("git commit -q -m 'add c'"),
            kit.write(MARKER, DONE),
            text("add c: done"),
        ],
        name="task-003",
    )
    proc, summary = kit.run(root, "--max-concurrent", "2", "--timeout", "120", repo=repo, env=env)
    assert proc.returncode == 0, describe(proc, api)
    tasks = tasks_by_id(summary)
    assert summary["status"] == "completed", describe(proc, api)
    assert {t["status"] for t in tasks.values()} == {"completed"}
    assert api.exhausted == 0 and all(api.remaining(t) == 0 for t in tasks), api.debug_log()
    branch = summary["integration_branch"]
    assert git(repo, "show", f"{branch}:src/c.txt") == "alpha\nbeta"
    subjects = git(repo, "log", "--format=%s", branch).splitlines()
    assert {"add a", "add b", "add c"} <= set(subjects), subjects
    rep = report(root)
    for tid in tasks:
        rec = rep["tasks"][tid]
        assert rec["merged"] is True and rec["marker"]["task_completed"] is True
        assert not rec["leftovers_committed"]  # the agent committed its own work
        assert rec["session_id"] and rec["input_tokens"] and rec["output_tokens"]
    assert [w["status"] for w in rep["waves"]] == ["completed", "completed"]


def no_marker_fails(kit: Kit, repo: Path, api: ScriptedApi, env: dict[str, str]) -> None:
    root = kit.spec(repo, "TS-R2", [{"task-001": {"body": "Forget the marker."}}])
    api.script([kit.write("a.txt", "a\n"), text("finished, no marker")], name="task-001")
    proc, summary = kit.run(root, "--timeout", "60", repo=repo, env=env)
    assert proc.returncode == 1, describe(proc, api)
    task = tasks_by_id(summary)["task-001"]
    assert (task["status"], task["reason"]) == ("failed", "no_completion_marker")
    assert report(root)["tasks"]["task-001"]["leftovers_committed"] is True


def rate_limit_then_success(kit: Kit, repo: Path, api: ScriptedApi, env: dict[str, str]) -> None:
    """A 429, then a good task: retried by the CLI itself, or by cpo's own retry."""
    root = kit.spec(repo, "TS-R4", [{"task-001": {"body": "Survive a rate limit."}}])
    api.script([error(429), *kit.task("a.txt", "a\n", "add a")], name="task-001")
    proc, summary = kit.run(root, "--timeout", "90", *FAST_RETRY, repo=repo, env=env)
    assert proc.returncode == 0, describe(proc, api)
    task = tasks_by_id(summary)["task-001"]
    assert task["status"] == "completed"
    assert task["attempts"] == (1 if kit.cli_retries_rate_limit else 2), summary


def persistent_overload(kit: Kit, repo: Path, api: ScriptedApi, env: dict[str, str]) -> None:
    root = kit.spec(repo, "TS-R5", [{"task-001": {"body": "Never get through."}}])
    api.script([error(503, sticky=True)], name="task-001")
    proc, summary = kit.run(root, "--timeout", "90", "--retries", "0", repo=repo, env=env)
    assert proc.returncode == 1, describe(proc, api)
    task = tasks_by_id(summary)["task-001"]
    assert (task["status"], task["reason"]) == ("failed", "overloaded"), summary


def auth_failure_stops_launches(
    kit: Kit, repo: Path, api: ScriptedApi, env: dict[str, str]
) -> None:
    """`env` carries a key the API rejects."""
    root = kit.spec(
        repo,
        "TS-R6",
        [
            {"task-001": {"body": "One."}, "task-002": {"body": "Two."}},
            {"task-003": {"body": "Three.", "deps": ["task-001"]}},
        ],
    )
    proc, summary = kit.run(root, "--max-concurrent", "1", "--timeout", "60", repo=repo, env=env)
    assert proc.returncode == 1, describe(proc, api)
    tasks = tasks_by_id(summary)
    failed = [t for t in tasks.values() if t["status"] == "failed"]
    assert [t["reason"] for t in failed] == ["auth"], summary
    assert {t["status"] for t in tasks.values() if t["status"] != "failed"} == {"skipped"}
    # Only one agent was ever started, and no model turn was answered.
    assert [p.name for p in (root / "logs").glob("task-*.jsonl")] == [f"{failed[0]['id']}.jsonl"]
    assert api.main_requests == []


def stalled_api_timed_out(
    kit: Kit, repo: Path, api: ScriptedApi, env: dict[str, str], tmp_path: Path
) -> None:
    root = kit.spec(repo, "TS-R8", [{"task-001": {"body": "Wait forever."}}])
    api.script([stall()], name="task-001")
    proc, summary = kit.run(root, "--timeout", "5", repo=repo, env=env)
    assert proc.returncode == 1, describe(proc, api)
    task = tasks_by_id(summary)["task-001"]
    assert (task["status"], task["reason"]) == ("failed", "timeout"), summary
    assert api.stalled == 1, api.debug_log()
    time.sleep(0.5)
    assert leftover_processes(tmp_path) == []


def parallel_one_ok_one_overloaded(
    kit: Kit, api: ScriptedApi, env: dict[str, str], tmp_path: Path
) -> None:
    dirs = fresh_repos(tmp_path, "one", "two")
    api.script([kit.write("out.txt", "from one\n"), text("one done")], name="p-one")
    api.script([error(503, sticky=True)], name="p-two")
    spec = {
        "tasks": [
            {
                "id": f"p-{name}",
                "backend": kit.backend,
                "prompt": f"[script:p-{name}] work",
                "workdir": str(d),
                **kit.task_fields,
            }
            for name, d in dirs.items()
        ],
        "max_parallel": 2,
    }
    tasks_file = tmp_path / "tasks.json"
    tasks_file.write_text(json.dumps(spec))
    proc, summary = run_cpo("parallel", "-f", str(tasks_file), "--json", cwd=tmp_path, env=env)
    assert proc.returncode == 1, describe(proc, api)
    assert (summary["total_tasks"], summary["completed"], summary["failed"]) == (2, 1, 1)
    results = {r["task_id"]: r for r in summary["results"]}
    assert results["p-one"]["exit_code"] == 0 and not results["p-one"]["error"]
    assert results["p-one"]["output"] == "one done"  # the real CLI's final text
    assert (dirs["one"] / "out.txt").read_text() == "from one\n"
    assert (results["p-two"]["error"] or "").startswith("overloaded"), summary
    assert leftover_processes(tmp_path) == []
