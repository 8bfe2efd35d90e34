"""Handoff to dependents (cpo.plan.handoff, cpo.run.handoff): a dependent's prompt, as its
agent receives it, says what its dependencies built."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cpo.plan.handoff import HEADING, DepWork, handoff_section, with_handoff
from tests.runkit import agent_prompts, cpo, make_spec, report

LIB = (
    "@script write lib.py def greet(): return 'hi'\n@script commit add lib\n"
    "@script marker "
    + json.dumps({"task_completed": True, "summary": "lib.py defines greet() returning hi"})
)


def dependent_prompt(git_repo: Path, tmp_path: Path, *args: str, **extra: object) -> str:
    """Run lib (wave 1) then app (wave 2, depends on lib); app's prompt as its agent got it."""
    root = make_spec(
        git_repo,
        [{"lib": LIB}, {"app": "@script marker"}],
        deps={"app": ["lib"]},
        extra=dict(extra),
    )
    proc = cpo("run", str(root), *args, cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    app = report(root)["tasks"]["app"]
    return agent_prompts(tmp_path / "home", app["worktree"], app["session_id"])[0]


@pytest.mark.usefixtures("fake_claude")
def test_dependent_prompt_holds_dependency_summary_and_files(
    git_repo: Path, tmp_path: Path
) -> None:
    prompt = dependent_prompt(git_repo, tmp_path)
    section = prompt[prompt.index(HEADING) :]
    assert "### lib" in section
    assert "Summary: lib.py defines greet() returning hi" in section
    assert "Files changed (1): lib.py" in section
    assert "Diff: 1 file changed, 1 insertion(+)" in section


@pytest.mark.usefixtures("fake_claude")
def test_handoff_false_in_the_manifest_leaves_the_prompt_alone(
    git_repo: Path, tmp_path: Path
) -> None:
    assert HEADING not in dependent_prompt(git_repo, tmp_path, handoff=False)


def test_section_stays_within_its_limit() -> None:
    deps = [
        DepWork(f"task-{i:03d}", "word " * 500, tuple(f"src/m{n}.py" for n in range(200)), None)
        for i in range(3)
    ]
    section = handoff_section(deps, 1500)
    assert len(section) <= 1500
    assert section.count("### task-") == 3
    assert "… and" in section and "more" in section  # files counted, not all listed


def test_no_dependencies_no_section() -> None:
    assert handoff_section([], 4000) == ""
    assert with_handoff("do it\n", "") == "do it\n"
    assert with_handoff("do it\n", "## S").endswith("do it\n\n## S\n")
