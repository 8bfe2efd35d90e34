"""Sparse set-up (`sparse: true`): a task's worktree holds only its scope's folders.

Real git, real `cpo run` processes; the agent is a shell script that records what its
worktree holds and what its prompt said, then does what each task needs.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from plandirs import cpo_manifest, task_md, write_dir

from cpo.git import Git
from cpo.plan.load import load_plan
from cpo.plan.scope import parse_scope, sparse_folders
from cpo.run import worktrees
from tests.conftest import git
from tests.runkit import cpo, report

# Each task: its Scope section and what its agent does after recording its worktree.
TASKS = {
    # edits a file of its own folder, committing as the prompt says
    "t-own": (
        "MODIFY: src/a/x.py",
        "echo edited >> src/a/x.py && git add -A --sparse && git commit -qm own",
    ),
    # widens its checkout to read and edit a file outside its scope
    "t-widen": (
        "CREATE: docs/new.md",
        "git sparse-checkout add src/b && test -f src/b/y.py && echo widened >> src/b/y.py && "
        "echo new > docs/new.md && git add -A && git commit -qm widen",
    ),
    # writes outside its set without widening, commits with a plain `git add -A` (which
    # git refuses there) and leaves the file: cpo must commit it
    "t-outside": (
        "CREATE: src/a/z.py",
        "echo z > src/a/z.py && mkdir -p other && echo out > other/outside.txt && "
        "{ git add -A; git commit -qm outside; true; }",
    ),
}

AGENT = """\
cat > "$OUT/$CPO_TASK_ID.prompt"
git ls-files -t | grep -v '^S' | cut -c3- | sort > "$OUT/$CPO_TASK_ID.tracked"
find . -path ./.git -prune -o -type f -print | sed 's|^\\./||' | sort > "$OUT/$CPO_TASK_ID.files"
case "$CPO_TASK_ID" in
{cases}
esac
: > .claude-task-complete
"""


def _repo_files(repo: Path) -> None:
    for rel in ("src/a/x.py", "src/b/y.py", "docs/d.md", "deep/er/w.txt", "top.txt"):
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{rel}\n")


def _spec(repo: Path, tmp_path: Path, *, task_sparse: dict[str, bool] | None = None) -> Path:
    _repo_files(repo)
    tasks = {}
    for tid, (scope, _) in TASKS.items():
        meta: dict[str, object] = {"id": tid}
        if task_sparse and tid in task_sparse:
            meta["sparse"] = task_sparse[tid]
        tasks[f"{tid}.md"] = task_md(meta, f"# {tid}\n\nDo it.\n\n## Scope\n{scope}\n")
    root = write_dir(
        repo / "parallel" / "TS-9", cpo_manifest(list(TASKS), tech_spec_id="TS-9", sparse=True)
    )
    write_dir(root, tasks=tasks)
    (root / "context.md").write_text("what every agent reads\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "files and plan")
    cases = "\n".join(f"  {tid}) {action} ;;" for tid, (_, action) in TASKS.items())
    (tmp_path / "agent.sh").write_text(AGENT.format(cases=cases))
    return root


def _run(repo: Path, root: Path, out: Path) -> None:
    out.mkdir()
    agent = f"sh {out.parent / 'agent.sh'}"
    done = cpo(
        "run", str(root), "--backend", "command", "--agent-command", agent, "-j", "2",
        cwd=repo, env={"OUT": str(out)},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def _lines(path: Path) -> set[str]:
    return set(path.read_text().split())


def test_sparse_tasks_hold_their_scope_widen_and_merge_everything(
    git_repo: Path, tmp_path: Path
) -> None:
    root = _spec(git_repo, tmp_path)
    out = tmp_path / "out"
    _run(git_repo, root, out)

    plan_files = {p for p in _lines(out / "t-own.files") if p.startswith("parallel/")}
    assert plan_files >= {"parallel/TS-9/context.md", "parallel/TS-9/manifest.json"}
    # only its scope's folder, the top-level files and the plan were checked out
    assert _lines(out / "t-own.files") - plan_files == {"README.md", "top.txt", "src/a/x.py"}
    assert _lines(out / "t-outside.files") - plan_files == {"README.md", "top.txt", "src/a/x.py"}
    # the rest is not deleted, only not checked out: git's index still has every file
    assert "src/b/y.py" not in _lines(out / "t-own.tracked")
    assert "This worktree is a sparse checkout" in (out / "t-own.prompt").read_text()
    assert "these folders: src/a/" in (out / "t-own.prompt").read_text()

    data = report(root)
    assert data["status"] == "completed"
    assert all(t["status"] == "completed" for t in data["tasks"].values())
    assert data["tasks"]["t-outside"]["leftovers_committed"] is True
    integration = "integration/TS-9"
    changes = git(git_repo, "diff", "--name-status", "main", integration).splitlines()
    assert sorted(changes) == [
        "A\tdocs/new.md",
        "A\tother/outside.txt",
        "A\tsrc/a/z.py",
        "M\tsrc/a/x.py",
        "M\tsrc/b/y.py",
    ]
    # the integration worktree stays whole
    whole = Path(data["integration_worktree"])
    assert (whole / "deep" / "er" / "w.txt").is_file()
    assert not git(whole, "ls-files", "-t").count("\nS ")  # no skip-worktree entry


def test_a_task_can_opt_out_and_the_default_is_a_full_checkout(
    git_repo: Path, tmp_path: Path
) -> None:
    root = _spec(git_repo, tmp_path, task_sparse={"t-own": False})
    out = tmp_path / "out"
    _run(git_repo, root, out)
    assert "deep/er/w.txt" in _lines(out / "t-own.files")
    assert "sparse checkout" not in (out / "t-own.prompt").read_text()
    assert "deep/er/w.txt" not in _lines(out / "t-outside.files")


def test_sparse_folders_of_a_scope() -> None:
    scope = parse_scope(
        "## Scope\nCREATE: apps/users/models.py, apps/users/tests/*.py, README.md\n"
        "MODIFY: config/urls.py::urls, web/\nBOUNDARY: apps/orders/*\n"
    )
    assert sparse_folders(scope) == ("apps/users", "config", "web")
    assert sparse_folders(parse_scope("## Scope\nMODIFY: README.md\n")) == ()
    assert sparse_folders(parse_scope("## Scope\nBOUNDARY: a/b\n")) is None
    assert sparse_folders(()) is None


def test_validate_rejects_a_sparse_that_is_not_a_boolean(tmp_path: Path) -> None:
    root = write_dir(
        tmp_path / "TS-1",
        cpo_manifest([{"id": "task-001", "sparse": "yes"}], sparse=1),
        {"task-001.md": {"id": "task-001"}},
    )
    done = cpo("validate", str(root), "--json", cwd=tmp_path)
    assert done.returncode != 0
    problems = json.loads(done.stdout)["problems"]
    fields = sorted(p["field"] for p in problems if p["severity"] == "error")
    assert fields == ["sparse", "waves[0].tasks[0].sparse"], problems


def test_validate_shows_the_sparse_folders(git_repo: Path, tmp_path: Path) -> None:
    root = _spec(git_repo, tmp_path, task_sparse={"t-own": False})
    shown = cpo("validate", str(root), cwd=git_repo).stdout
    assert "sparse: src/a/" in shown and shown.count("sparse:") == 2
    data = json.loads(cpo("validate", str(root), "--json", cwd=git_repo).stdout)
    assert {t["id"]: t["sparse"] for t in data["tasks"]} == {
        "t-own": None,
        "t-widen": ["docs"],
        "t-outside": ["src/a"],
    }


def test_sparse_without_a_scope_is_a_warning_and_a_full_checkout(tmp_path: Path) -> None:
    root = write_dir(
        tmp_path / "TS-1",
        cpo_manifest(["task-001"], sparse=True),
        {"task-001.md": {"id": "task-001"}},
    )
    plan = load_plan(root)
    assert plan.tasks["task-001"].sparse is None
    assert any("no Scope section" in w.message for w in plan.warnings)


GIT_WATCH = """\
#!/bin/sh
# Real git; a checkout (`reset`) marks itself busy, and notes when another one was.
if [ "$1" = reset ]; then
  mkdir "$WATCH/busy" 2>/dev/null || echo overlap >> "$WATCH/overlaps"
  sleep 0.2
  "$REAL_GIT" "$@"; code=$?
  rmdir "$WATCH/busy" 2>/dev/null
  exit $code
fi
exec "$REAL_GIT" "$@"
"""


def test_checkouts_take_turns(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No more checkouts at once than the gate allows (the core count in a run)."""
    bin_dir, watch = tmp_path / "bin", tmp_path / "watch"
    bin_dir.mkdir()
    watch.mkdir()
    (bin_dir / "git").write_text(GIT_WATCH)
    (bin_dir / "git").chmod(0o755)
    monkeypatch.setenv("REAL_GIT", shutil.which("git") or "git")
    monkeypatch.setenv("WATCH", str(watch))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(worktrees, "CHECKOUTS", 1)
    base = git(git_repo, "rev-parse", "HEAD")
    wanted = [(tmp_path / "wt" / f"t{i}", f"feature/t{i}") for i in range(4)]
    made = worktrees.make_worktrees(Git(git_repo), wanted, base)
    threads = [threading.Thread(target=made.check_out, args=(p, base)) for p, _ in wanted]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all((p / "README.md").is_file() for p, _ in wanted)
    assert not (watch / "overlaps").exists()


def test_background_adds_hold_back_every_agent_until_the_last_add(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a first run the worktrees are added on a thread while the first tasks check out;
    a checkout (after which the agent starts) returns only once every add is done, or an
    agent's `git worktree list` could read a half-written worktree."""
    slow_add = Git.add_worktree

    def add(self: Git, *args: object, **kwargs: object) -> None:
        time.sleep(0.05)  # slower adds than checkouts of this small repository
        slow_add(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Git, "add_worktree", add)
    base = git(git_repo, "rev-parse", "HEAD")
    wanted = [(tmp_path / "wt" / f"t{i}", f"feature/t{i}") for i in range(6)]
    made = worktrees.make_worktrees(Git(git_repo), wanted, base, background=True)
    first = wanted[0][0]
    assert made.take_fresh(first)
    made.check_out(first, base)
    listed = git(git_repo, "worktree", "list", "--porcelain")
    assert all(f"worktree {p}" in listed for p, _ in wanted)  # every add done
    assert (first / "README.md").is_file()
    assert all(made.take_fresh(p) for p, _ in wanted[1:])
    made.stop()


def test_a_run_stopped_during_the_adds_leaves_no_branch_behind(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task branches are made in one `update-ref --stdin` before the adds; a run stopped
    while adding deletes those it had no worktree for, and removes the unused rest."""
    slow_add = Git.add_worktree

    def add(self: Git, *args: object, **kwargs: object) -> None:
        time.sleep(0.05)
        slow_add(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Git, "add_worktree", add)
    base = git(git_repo, "rev-parse", "HEAD")
    wanted = [(tmp_path / "wt" / f"t{i}", f"feature/t{i}") for i in range(8)]
    made = worktrees.make_worktrees(Git(git_repo), wanted, base, background=True)
    time.sleep(0.12)  # a few adds done
    made.stop()
    made.remove_unused()
    assert git(git_repo, "branch", "--list", "feature/*") == ""
    assert git(git_repo, "worktree", "list").count("\n") == 0  # only the main worktree


def test_adds_that_die_hold_no_launch_back(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever kills the adds' thread, a launch waiting for its worktree goes on (and
    makes the worktree itself): the run never hangs on an add that will not come."""

    def broken(self: Git, branches: object, at: str) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Git, "create_branches", broken)
    monkeypatch.setattr(threading, "excepthook", lambda args: None)  # expected, not shown
    base = git(git_repo, "rev-parse", "HEAD")
    wanted = [(tmp_path / "wt" / f"t{i}", f"feature/t{i}") for i in range(3)]
    made = worktrees.make_worktrees(Git(git_repo), wanted, base, background=True)
    answers: list[bool] = []
    waiting = threading.Thread(target=lambda: answers.append(made.take_fresh(wanted[0][0])))
    waiting.start()
    waiting.join(timeout=10)
    assert answers == [False]  # not made here: the launch makes it
    made.stop()
