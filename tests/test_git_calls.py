"""cpo's own git processes per task (counted through Git._raw): the post-agent checks,
the merge and the marker check take as few as the answers need."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from cpo.git import Git
from cpo.run.engine import execute
from cpo.run.options import RunOptions
from tests.runkit import make_spec

pytestmark = pytest.mark.usefixtures("fake_claude")

OK = "@script write {f} x\n@script commit add {f}\n@script marker"


def counting(calls: Counter[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Count each git process cpo starts from now on by its first two words."""
    raw = Git._raw

    def counted(
        self: Git, args: list[str], cwd: Path, stdin: str | None = None
    ) -> tuple[int, str, str]:
        calls[" ".join(args[:2])] += 1
        return raw(self, args, cwd, stdin)

    monkeypatch.setattr(Git, "_raw", counted)


def count_calls(repo: Path, n: int, spec_id: str, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    calls: Counter[str] = Counter()
    raw = Git._raw

    def counted(
        self: Git, args: list[str], cwd: Path, stdin: str | None = None
    ) -> tuple[int, str, str]:
        calls[" ".join(args[:2]).replace(spec_id, "X")] += 1
        return raw(self, args, cwd, stdin)

    root = make_spec(
        repo,
        [{f"task-{i:03}": OK.format(f=f"{spec_id}-{i}.txt") for i in range(n)}],
        spec_id=spec_id,
    )
    monkeypatch.setattr(Git, "_raw", counted)
    opts = RunOptions(max_concurrent=2, workspace_root=repo.parent / f"ws-{spec_id}")
    assert execute(root, opts).report.status == "completed"
    monkeypatch.setattr(Git, "_raw", raw)
    return calls


def test_git_processes_per_task(git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = count_calls(git_repo, 2, "TS-A", monkeypatch)
    big = count_calls(git_repo, 6, "TS-B", monkeypatch)
    per_task = {k: (big[k] - small[k]) / 4 for k in big}
    # Before: 12.25 per task (5 now: worktree add, reset, status, log, merge). The merge
    # commit comes from the ref files; after the agent, HEAD and its branch come with the
    # leftovers in one status, and one log says both whether HEAD holds the start point
    # and what it holds since; the marker's cat-file only when a commit touched it.
    assert sum(per_task.values()) <= 5.5, per_task
    for gone in ("rev-parse HEAD", "rev-parse HEAD^{commit}", "merge-base --is-ancestor"):
        assert per_task.get(gone, 0) == 0, per_task
    assert per_task.get("symbolic-ref -q", 0) == 0
    # 2 before; now the start point's answer is shared (two tasks may ask it at once)
    assert per_task.get("cat-file -e", 0) <= 0.5
    statuses = {k: v for k, v in per_task.items() if k.startswith("status ")}
    assert sum(statuses.values()) <= 1, statuses
    logs = {k: v for k, v in per_task.items() if k.startswith("log ")}
    assert sum(logs.values()) <= 1, logs


def test_a_dependency_diff_stat_is_asked_once_for_all_its_dependents(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each dependent's prompt says what its dependencies built, with git's diff stat; the
    # scheduler's thread asks it at each launch (nothing else launches or merges
    # meanwhile), so a task with three dependents once, not three times.
    calls: Counter[str] = Counter()
    apps = [f"app-{i}" for i in range(3)]
    root = make_spec(
        git_repo,
        [{"lib": OK.format(f="lib.txt")}, {a: OK.format(f=f"{a}.txt") for a in apps}],
        deps={a: ["lib"] for a in apps},
        spec_id="TS-H",
    )
    counting(calls, monkeypatch)
    opts = RunOptions(max_concurrent=3, workspace_root=git_repo.parent / "ws-h")
    assert execute(root, opts).report.status == "completed"
    assert calls["diff --shortstat"] == 1, calls


def test_set_up_asks_each_question_once(git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Preflight's checks share one `git status`, worktree list and branch list: in a
    50,000-file checkout each status costs ~0.2 s before the first agent can start."""
    small = count_calls(git_repo, 2, "TS-A", monkeypatch)
    big = count_calls(git_repo, 6, "TS-B", monkeypatch)
    fixed = {k: small[k] - 2 * (big[k] - small[k]) / 4 for k in big}
    assert fixed.get("status --porcelain", 0) <= 1, fixed  # was 3
    # The set-up decides from preflight's lists too (cpo.run.worktrees.Seen): was 4, then 2.
    assert fixed.get("worktree list", 0) <= 1, fixed
    assert fixed.get("for-each-ref --format=%(refname)", 0) <= 1, fixed  # was 3, then 2
    assert fixed.get("rev-parse --path-format=absolute", 0) <= 1, fixed  # was 2
    # No prune for a new integration worktree, no rev-parse for its new branch or HEAD
    # (prepare: Git.worktree_head): was 1, and 5.
    assert fixed.get("worktree prune", 0) == 0, fixed
    assert fixed.get("rev-parse --verify", 0) <= 2, fixed


def test_a_launch_asks_git_nothing_about_the_marker(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether the start point holds a committed marker is read from the checkout just
    made (no `.claude-task-complete` file: it does not), not asked with `git cat-file`:
    one process fewer between a dependency's merge and its dependent's agent, each of
    which starts from a new integration commit."""
    calls: Counter[str] = Counter()
    waves = [{f"task-{i}": OK.format(f=f"{i}.txt")} for i in range(3)]  # 3 start points
    root = make_spec(git_repo, waves)
    counting(calls, monkeypatch)
    result = execute(root, RunOptions(workspace_root=git_repo.parent / "ws"))
    assert result.report.status == "completed"
    assert calls["cat-file -e"] == 0, calls
