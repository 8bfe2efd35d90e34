"""Every parallel directory shipped in examples/ validates (strictly)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cpo.plan.load import load_plan

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DIRS = sorted(
    p
    for p in EXAMPLES.iterdir()
    if p.is_dir() and ((p / "manifest.json").exists() or (p / "tasks").is_dir())
)


def test_both_manifest_styles_are_shipped() -> None:
    names = {p.name for p in DIRS}
    assert {"cpo-style", "legacy-style"} <= names


@pytest.mark.parametrize("example", DIRS, ids=[p.name for p in DIRS])
def test_example_validates(example: Path) -> None:
    plan = load_plan(example, strict=True)
    assert plan.tasks and plan.waves
    assert plan.warnings == ()
