"""`cpo clean`: real runs with the scripted claude, then cleaning their worktrees and branches."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import git
from tests.runkit import cpo, make_spec, repo_state, report

pytestmark = pytest.mark.usefixtures("fake_claude")

INTEG = "integration/TS-0042"


def _ok(name: str) -> str:
    return f"@script write {name} {name}\n@script commit add {name}\n@script marker"


def _completed_run(repo: Path) -> Path:
    root = make_spec(repo, [{"task-001": _ok("a.txt"), "task-002": _ok("b.txt")}])
    proc = cpo("run", str(root), cwd=repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root


def _branches(repo: Path) -> set[str]:
    return set(git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads").split())


def _worktrees(repo: Path) -> list[str]:
    return [
        line.split(" ", 1)[1]
        for line in git(repo, "worktree", "list", "--porcelain").splitlines()
        if line.startswith("worktree ")
    ]


def _snapshot(repo: Path) -> tuple[str, str]:
    return git(repo, "for-each-ref"), git(repo, "worktree", "list", "--porcelain")


def test_clean_after_success_removes_everything_merged(git_repo: Path) -> None:
    root = _completed_run(git_repo)
    data = report(root)
    before = repo_state(git_repo)
    proc = cpo("clean", str(root), cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _worktrees(git_repo) == [str(git_repo)]
    assert _branches(git_repo) == {"main", INTEG}
    for rec in data["tasks"].values():
        assert not Path(rec["worktree"]).exists()
        assert f"deleted branch {rec['branch']} (merged into {INTEG})" in proc.stdout
    assert not Path(data["integration_worktree"]).exists()
    assert f"kept branch {INTEG}: not merged into main yet" in proc.stdout
    assert repo_state(git_repo) == before  # base branch and the user's tree untouched

    # once the integration branch is merged into main, it goes too
    git(git_repo, "merge", "-q", "--no-ff", "-m", "merge", INTEG)
    proc = cpo("clean", str(root), cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"deleted branch {INTEG} (merged into main)" in proc.stdout
    assert _branches(git_repo) == {"main"}


def test_refuses_to_drop_unmerged_commits(git_repo: Path) -> None:
    root = _completed_run(git_repo)
    wt = Path(report(root)["tasks"]["task-001"]["worktree"])
    (wt / "late.txt").write_text("work done after the merge\n")
    git(wt, "add", "late.txt")
    git(wt, "commit", "-q", "-m", "late work")
    late = git(wt, "rev-parse", "HEAD")

    proc = cpo("clean", str(root), cwd=git_repo)
    assert proc.returncode == 1
    refusal = f"refused branch feature/TS-0042/task-001: 1 commit is not merged into {INTEG}"
    assert refusal in proc.stdout
    assert f"refused worktree {wt}: its branch feature/TS-0042/task-001 holds unmerged commits" in (
        proc.stdout
    )
    assert git(git_repo, "rev-parse", "feature/TS-0042/task-001") == late
    assert wt.is_dir()
    # everything else was cleaned
    assert "feature/TS-0042/task-002" not in _branches(git_repo)
    assert set(_worktrees(git_repo)) == {str(git_repo), str(wt)}

    proc = cpo("clean", str(root), "--force", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "feature/TS-0042/task-001" not in _branches(git_repo)
    assert not wt.exists()
    assert INTEG not in _branches(git_repo)  # --force drops the unmerged integration branch too


def test_refuses_a_worktree_with_uncommitted_changes(git_repo: Path) -> None:
    root = _completed_run(git_repo)
    wt = Path(report(root)["tasks"]["task-002"]["worktree"])
    (wt / "notes.txt").write_text("not committed\n")
    (wt / "b.txt").write_text("edited\n")

    proc = cpo("clean", str(root), cwd=git_repo)
    assert proc.returncode == 1
    assert f"refused worktree {wt}: has uncommitted changes (b.txt, notes.txt)" in proc.stdout
    assert (wt / "notes.txt").read_text() == "not committed\n"
    assert "feature/TS-0042/task-002" in _branches(git_repo)  # kept with its worktree
    assert f"kept branch feature/TS-0042/task-002: kept with its worktree {wt}" in proc.stdout
    assert "feature/TS-0042/task-001" not in _branches(git_repo)


def test_dry_run_changes_nothing(git_repo: Path) -> None:
    root = _completed_run(git_repo)
    before = _snapshot(git_repo)
    proc = cpo("clean", str(root), "--dry-run", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _snapshot(git_repo) == before
    wt = report(root)["tasks"]["task-001"]["worktree"]
    assert f"would remove worktree {wt} (clean)" in proc.stdout
    assert f"would delete branch feature/TS-0042/task-001 (merged into {INTEG})" in proc.stdout
    assert proc.stdout.strip().endswith("dry run: nothing was changed")
    # --force --dry-run does not delete either
    assert cpo("clean", str(root), "--dry-run", "--force", cwd=git_repo).returncode == 0
    assert _snapshot(git_repo) == before


def test_attempt_branches_are_treated_like_task_branches(git_repo: Path) -> None:
    root = make_spec(
        git_repo,
        [
            {
                "task-001": "@script write a.txt a\n@script commit add a\n"
                "@script overloaded-first 1\n@script marker"
            }
        ],
    )
    proc = cpo("run", str(root), "--retry-delay", "0", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    saved = "feature/TS-0042/task-001-attempt-1"
    assert saved in _branches(git_repo)  # the first attempt's work, kept before the retry
    # Both attempts may have made the very same commit (same content, same second): give
    # the saved attempt work of its own that was never merged.
    side = git_repo.parent / "attempt-wt"
    git(git_repo, "worktree", "add", "-q", str(side), saved)
    (side / "only-in-attempt-1.txt").write_text("x\n")
    git(side, "add", "-A")
    git(side, "commit", "-q", "-m", "attempt 1 extra")
    git(git_repo, "worktree", "remove", str(side))

    proc = cpo("clean", str(root), cwd=git_repo)
    assert proc.returncode == 1
    refusal = next(line for line in proc.stdout.splitlines() if line.startswith("refused"))
    assert refusal.startswith(f"refused branch {saved}: ")  # 1 or 2 commits, see above
    assert refusal.endswith(f"not merged into {INTEG}")
    assert saved in _branches(git_repo)
    assert "feature/TS-0042/task-001" not in _branches(git_repo)

    # merged into the integration branch, it is cleaned like any merged branch
    integ_wt = git_repo.parent / "integration-wt"
    git(git_repo, "worktree", "add", "-q", str(integ_wt), INTEG)
    git(integ_wt, "merge", "-q", "--no-ff", "-X", "theirs", "-m", "keep attempt 1", saved)
    git(git_repo, "worktree", "remove", str(integ_wt))
    proc = cpo("clean", str(root), cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"deleted branch {saved} (merged into {INTEG})" in proc.stdout


def test_no_report_is_one_line_exit_2(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": _ok("a.txt")}])
    proc = cpo("clean", str(root), cwd=git_repo)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: no run in {root}: nothing to clean"


def test_removes_the_merge_worktree_a_killed_integrate_left(git_repo: Path) -> None:
    """`cpo integrate` merges in `<workspace root>/<spec>/.integrate`, a detached worktree
    it always removes, unless it is killed. Before: `cpo clean` did not know it, so it
    stayed registered with its folder (and the spec's folder with it) until the next
    integrate."""
    root = _completed_run(git_repo)
    data = report(root)
    spec_dir = Path(data["integration_worktree"]).parent
    left = spec_dir / ".integrate"
    git(git_repo, "worktree", "add", "-q", "--detach", str(left), "main")  # as a kill leaves it
    proc = cpo("clean", str(root), cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"removed worktree {left} (clean)" in proc.stdout
    assert _worktrees(git_repo) == [str(git_repo)]
    assert not left.exists()
