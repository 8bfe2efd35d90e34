"""The scope check (cpo.run.scopecheck): files a task changed outside its `## Scope`."""

from __future__ import annotations

from pathlib import Path

import pytest

from cpo.plan.model import ScopeEntry
from cpo.run.scopecheck import out_of_scope
from tests.conftest import git
from tests.runkit import cpo, make_spec, report

# Declares a.py; also writes stray.py.
STRAY = (
    "@script write a.py A = 1\n@script write stray.py B = 2\n@script commit add\n@script marker"
    "\n\n## Scope\nCREATE: a.py\n"
)


@pytest.mark.usefixtures("fake_claude")
def test_out_of_scope_files_are_flagged_in_report_summary_and_integrate(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": STRAY, "task-002": "@script marker"}])
    proc = cpo("run", str(root), cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tasks = report(root)["tasks"]
    assert tasks["task-001"]["out_of_scope"] == ["stray.py"]
    assert tasks["task-001"]["merged"] is True  # flagged, not failed
    assert tasks["task-002"]["out_of_scope"] == []  # no scope declared: nothing to check
    assert "task-001: changed outside its scope: stray.py" in proc.stdout
    git(git_repo, "branch", "release", "main")
    assert cpo("integrate", str(root), "--into", "release", cwd=git_repo).returncode == 0
    integration = (root / "integration-report.md").read_text()
    assert "## Out of scope\n\n- task-001: changed outside its scope: stray.py" in integration


@pytest.mark.usefixtures("fake_claude")
def test_strict_scope_fails_the_task_and_keeps_its_work(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": STRAY}])
    proc = cpo("run", str(root), "--strict-scope", cwd=git_repo)
    assert proc.returncode == 1
    t = report(root)["tasks"]["task-001"]
    assert (t["status"], t["reason"], t["merged"]) == ("failed", "out_of_scope", False)
    assert "stray.py" in t["error"]
    assert git(git_repo, "show", f"{t['branch']}:stray.py") == "B = 2"
    assert "status=failed error=out_of_scope" in proc.stdout


def test_scope_allows_globs_and_folders_and_bars_boundaries() -> None:
    scope = (
        ScopeEntry("CREATE", "src/users/*.py"),
        ScopeEntry("MODIFY", "config/urls.py", "urlpatterns"),
        ScopeEntry("CREATE", "docs/"),
        ScopeEntry("BOUNDARY", "src/users/secret.py"),
    )
    files = [
        "src/users/models.py",
        "config/urls.py",
        "docs/a/b.md",
        "src/users/secret.py",
        "src/orders/x.py",
    ]
    assert out_of_scope(scope, files) == ["src/users/secret.py", "src/orders/x.py"]
    assert out_of_scope((ScopeEntry("BOUNDARY", "x"),), ["x", "y"]) == []  # nothing declared
