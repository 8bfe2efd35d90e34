"""What `cpo run` does around a task's agent, done the same on a worker: nudges, setup
commands, ports and sparse checkouts (`--executor subprocess`: each attempt by `cpo
worker run-task` through a `file://` bare remote, as on a cluster)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git
from tests.executorkit import EXECUTORS, run_with
from tests.runkit import cpo, make_spec, report

pytestmark = [
    pytest.mark.usefixtures("fake_claude"),
    pytest.mark.skipif(sys.platform != "linux", reason="the worker reads /proc"),
]

NO_MARKER = "@script write a.txt a\n@script commit add a"


def _clone(git_repo: Path, tmp_path: Path, name: str) -> Path:
    repo = tmp_path / name / "repo"
    repo.parent.mkdir()
    git(tmp_path, "clone", "-q", str(git_repo), str(repo))
    return repo


def _nudges(rec: dict[str, Any]) -> list[dict[str, Any]]:
    [attempt] = rec["attempts"]
    nudges: list[dict[str, Any]] = attempt["nudges"]
    assert all(n["session_id"] == attempt["session_id"] == rec["session_id"] for n in nudges)
    assert all(n["cost_usd"] > 0 and n["duration_seconds"] >= 0 for n in nudges)
    return [{k: n[k] for k in ("number", "why", "outcome")} for n in nudges]


def test_a_task_without_the_marker_completes_after_a_nudge_on_a_worker(
    git_repo: Path, tmp_path: Path
) -> None:
    records = {}
    for executor in EXECUTORS:
        repo = _clone(git_repo, tmp_path, executor)
        root = make_spec(repo, [{"task-001": NO_MARKER}])
        proc = run_with(executor, repo, root, "--retries", "0")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        rec = records[executor] = report(root)["tasks"]["task-001"]
        assert (rec["status"], rec["merged"], rec["commits"]) == ("completed", True, 1)
        assert f"resuming session {rec['session_id']}" in Path(rec["log"]).read_text()
    local, remote = (_nudges(records[e]) for e in EXECUTORS)
    assert local == remote == [{"number": 1, "why": "no_completion_marker", "outcome": "ok"}]
    # the attempt's cost counts both runs of the agent, wherever it ran
    costs = [
        (r["attempts"][0]["cost_usd"], r["attempts"][0]["nudges"][0]["cost_usd"])
        for r in records.values()
    ]
    assert all(total > nudge for total, nudge in costs)


def test_no_nudges_on_a_worker_fails_as_locally(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": NO_MARKER}])
    proc = run_with("subprocess", git_repo, root, "--retries", "0", "--nudges", "0")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rec = report(root)["tasks"]["task-001"]
    assert rec["reason"] == "no_completion_marker" and rec["attempts"][0]["nudges"] == []


def test_setup_commands_run_on_the_worker_before_the_agent(git_repo: Path) -> None:
    (git_repo / ".gitignore").write_text(".ready\n")
    root = make_spec(
        git_repo,
        [
            {
                "task-001": "@script require .ready\n@script write a.txt a\n"
                "@script commit\n@script marker"
            }
        ],
        extra={"setup": "echo spec-$CPO_TASK_ID-$CPO_PORT > .ready"},
    )
    task_file = root / "tasks" / "task-001.md"
    task_file.write_text(
        task_file.read_text().replace("deps: []", "deps: []\nsetup: [grep -q spec-task-001 .ready]")
    )
    git(git_repo, "commit", "-q", "-am", "task setup")
    proc = run_with("subprocess", git_repo, root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rec = report(root)["tasks"]["task-001"]
    assert rec["status"] == "completed" and rec["files_changed"] == ["a.txt"]
    attempt = rec["attempts"][-1]
    steps = [(s["command"], s["exit_code"]) for s in attempt["setup"]]
    assert steps == [
        ("echo spec-$CPO_TASK_ID-$CPO_PORT > .ready", 0),
        ("grep -q spec-task-001 .ready", 0),
    ]
    # a block of ports taken on the worker's machine, as a local task gets one
    first, last = attempt["ports"]
    assert last - first + 1 == 10
    log = Path(rec["log"]).read_text()
    assert "[cpo] setup: $ grep -q spec-task-001 .ready" in log
    assert f"(CPO_PORT={first})" in log
    assert log.index("setup: $ grep") < log.index("Write a.txt")


def test_a_failing_setup_command_on_the_worker_fails_the_task_before_its_agent(
    git_repo: Path,
) -> None:
    root = make_spec(
        git_repo,
        [{"task-001": "@script write a.txt a\n@script commit\n@script marker"}],
        extra={"setup": ["true", "echo broken >&2; exit 3"]},
    )
    proc = run_with("subprocess", git_repo, root, "--retries", "0")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rec = report(root)["tasks"]["task-001"]
    assert (rec["status"], rec["reason"]) == ("failed", "setup_failed")
    assert "echo broken >&2; exit 3" in rec["error"] and "exit code 3" in rec["error"]
    assert rec["commits"] == 0 and rec["session_id"] is None  # the agent never ran
    assert [s["exit_code"] for s in rec["attempts"][-1]["setup"]] == [0, 3]
    assert "broken" in Path(rec["log"]).read_text()


def test_a_sparse_task_gets_its_sparse_checkout_on_the_worker(
    git_repo: Path, tmp_path: Path
) -> None:
    for rel in ("src/a/x.txt", "other/y.txt"):
        (git_repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (git_repo / rel).write_text(f"{rel}\n")
    saved = tmp_path / "prompt.txt"
    root = make_spec(
        git_repo,
        [
            {
                "task-001": f"@script save-prompt {saved}\n@script require src/a/x.txt\n"
                "@script write src/a/z.txt z\n@script commit add z\n@script marker\n\n"
                "## Scope\nMODIFY: src/a/x.txt\nCREATE: src/a/z.txt"
            }
        ],
        # fails the task unless the checkout lacks the folder outside its scope
        extra={
            "sparse": True,
            "setup": "test ! -e other/y.txt && test -f parallel/TS-0042/manifest.json",
        },
    )
    proc = run_with("subprocess", git_repo, root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rec = report(root)["tasks"]["task-001"]
    assert rec["status"] == "completed" and rec["files_changed"] == ["src/a/z.txt"]
    assert "This worktree is a sparse checkout" in saved.read_text()
    assert "these folders: src/a/" in saved.read_text()
    # the rest was only not checked out: the merge keeps it
    files = git(git_repo, "ls-tree", "-r", "--name-only", "integration/TS-0042").splitlines()
    assert {"other/y.txt", "src/a/x.txt", "src/a/z.txt"} <= set(files)


def test_included_files_are_named_once_as_not_on_workers(git_repo: Path) -> None:
    (git_repo / ".gitignore").write_text(".env\n")
    (git_repo / ".worktreeinclude").write_text(".env\n")
    root = make_spec(git_repo, [{"task-001": "@script marker"}])
    (git_repo / ".env").write_text("API_URL=http://localhost\n")
    proc = run_with("subprocess", git_repo, root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    line = "--executor subprocess: .env (named by .worktreeinclude"
    assert out.count(line) == 1, out
    assert "not in the workers' clones" in out


def _worker_refs(repo: Path, remote: str) -> tuple[set[str], set[str]]:
    """(the fetched attempt refs here, the `cpo-worker/` branches on the remote)."""
    here = git(repo, "for-each-ref", "--format=%(refname)", "refs/cpo-worker").split()
    there = git(repo, "ls-remote", "--heads", remote, "refs/heads/cpo-worker/*").split()
    return set(here), {r for r in there if r.startswith("refs/")}


def test_clean_removes_merged_worker_branches_and_keeps_unmerged_ones(git_repo: Path) -> None:
    ok = "@script write {0} {0}\n@script commit add {0}\n@script marker"
    root = make_spec(git_repo, [{"task-001": ok.format("a.txt"), "task-002": ok.format("b.txt")}])
    proc = run_with("subprocess", git_repo, root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    remote = (git_repo.parent / "remote.git").as_uri()
    attempts = {f"cpo-worker/TS-0042/task-00{n}/attempt-1" for n in (1, 2)}
    assert _worker_refs(git_repo, remote) == (
        {f"refs/cpo-worker/{a}" for a in attempts},
        {f"refs/heads/{a}" for a in attempts},
    )
    # Attempts' work that is in no branch (failed attempts a retry replaced): one fetched
    # here, one only on the remote; and another spec's worker branch: not this clean's.
    fetched, pushed = (
        "cpo-worker/TS-0042/task-001/attempt-8",
        "cpo-worker/TS-0042/task-001/attempt-9",
    )
    for n, name in enumerate((fetched, pushed)):
        work = git(git_repo, "commit-tree", "HEAD^{tree}", "-p", "HEAD", "-m", f"work {n}")
        git(git_repo, "push", "-q", remote, f"{work}:refs/heads/{name}")
    git(git_repo, "update-ref", f"refs/cpo-worker/{fetched}", work_of(git_repo, remote, fetched))
    other = "refs/heads/cpo-worker/TS-7/task-001/attempt-1"
    git(git_repo, "push", "-q", remote, f"HEAD:{other}")

    proc = cpo("clean", str(root), cwd=git_repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # refusals
    out = proc.stdout + proc.stderr
    assert f"deleted worker branch refs/cpo-worker/{min(attempts)} (merged into" in out
    assert f"refused worker branch refs/cpo-worker/{fetched}: its head is not merged" in out
    assert f"refused worker branch {pushed} on {remote}: its head is not merged" in out
    # the remote's copy of fetched work goes: the ref here keeps it
    assert f"deleted worker branch {fetched} on {remote} (fetched here as" in out
    assert _worker_refs(git_repo, remote) == (
        {f"refs/cpo-worker/{fetched}"},
        {f"refs/heads/{pushed}", other},
    )
    proc = cpo("clean", str(root), "--force", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _worker_refs(git_repo, remote) == (set(), {other})


def work_of(repo: Path, remote: str, branch: str) -> str:
    return git(repo, "ls-remote", remote, f"refs/heads/{branch}").split()[0]
