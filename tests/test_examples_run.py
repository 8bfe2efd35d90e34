"""Every example in examples/ runs end to end: copied into a fresh repository and built by
`cpo run` with the command backend, whose "agent" is a script doing each task's work."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import git
from tests.runkit import cpo, report

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if (p / "manifest.json").exists())
SOLUTIONS = Path(__file__).parent / "data" / "example-solutions"


def test_every_example_has_solutions() -> None:
    assert {p.name for p in EXAMPLES} == {p.name for p in SOLUTIONS.iterdir()}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_end_to_end(example: Path, git_repo: Path) -> None:
    root = git_repo / "parallel" / example.name
    shutil.copytree(example, root, ignore=shutil.ignore_patterns("logs", "report.json"))
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-qm", "add the example spec")
    solutions = SOLUTIONS / example.name
    proc = cpo(
        "run",
        str(root),
        "--backend",
        "command",
        "--agent-command",
        f'sh "{solutions}/$(echo $CPO_TASK_ID | cut -c1-8).sh"',
        cwd=git_repo,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = report(root)
    assert data["status"] == "completed"
    assert all(t["merged"] for t in data["tasks"].values())
    assert all(w["status"] == "completed" for w in data["waves"])
