"""`cpo run` with the codex and gemini backends, end to end against the fake CLIs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FakeAgent, git
from tests.runkit import cpo, make_spec, report


def _run_registered() -> bool:
    from typer.main import get_command

    from cpo.cli import app

    return "run" in getattr(get_command(app), "commands", {})


pytestmark = pytest.mark.skipif(not _run_registered(), reason="cpo run not available yet")

DONE = "@write {name}.py x = 1\n@commit add {name}\n@marker\n@say finished {name}"


def _task(root: Path, tid: str) -> dict[str, Any]:
    data: dict[str, Any] = report(root)["tasks"]
    return dict(data[tid])


@pytest.mark.parametrize("backend", ["codex", "gemini"])
def test_backend_completes_a_wave(
    git_repo: Path, fake_codex: FakeAgent, fake_gemini: FakeAgent, backend: str
) -> None:
    root = make_spec(
        git_repo,
        [{"task-001": DONE.format(name="one"), "task-002": DONE.format(name="two")}],
    )
    done = cpo("run", str(root), "--backend", backend, cwd=git_repo)
    assert done.returncode == 0, done.stdout + done.stderr
    for tid in ("task-001", "task-002"):
        task = _task(root, tid)
        assert (task["status"], task["backend"], task["commits"]) == ("completed", backend, 1)
        assert task["session_id"] and task["input_tokens"] and task["output_tokens"]
    assert git(git_repo, "show", "integration/TS-0042:one.py") == "x = 1"
    fake = fake_codex if backend == "codex" else fake_gemini
    calls = fake.calls()
    assert len(calls) == 2
    # the prompt on stdin, cpo's completion protocol in the backend's own place
    assert all("@write" in c["stdin"] for c in calls)
    if backend == "codex":
        assert all(any(a.startswith("developer_instructions=") for a in c["argv"]) for c in calls)
    else:
        assert all(".claude-task-complete" in c["argv"][c["argv"].index("-p") + 1] for c in calls)
        assert all(c["env"]["GEMINI_CLI_TRUST_WORKSPACE"] == "true" for c in calls)


@pytest.mark.parametrize(
    ("backend", "directive", "reason"),
    [
        ("codex", "@auth", "auth"),
        ("codex", "@ratelimit", "rate_limited"),
        ("gemini", "@auth", "auth"),
        ("gemini", "@maxturns", "max_turns"),
    ],
)
def test_backend_failures_are_classified(
    git_repo: Path,
    fake_codex: FakeAgent,
    fake_gemini: FakeAgent,
    backend: str,
    directive: str,
    reason: str,
) -> None:
    root = make_spec(git_repo, [{"task-001": directive}])
    done = cpo("run", str(root), "--backend", backend, "--retries", "0", cwd=git_repo)
    assert done.returncode == 1
    task = _task(root, "task-001")
    assert task["status"] == "failed"
    assert task["reason"] == reason


def test_task_frontmatter_picks_the_backend(
    git_repo: Path, fake_codex: FakeAgent, fake_gemini: FakeAgent
) -> None:
    root = make_spec(
        git_repo, [{"task-001": DONE.format(name="a"), "task-002": DONE.format(name="b")}]
    )
    path = root / "tasks" / "task-002.md"
    path.write_text(path.read_text().replace("id: task-002\n", "id: task-002\nbackend: gemini\n"))
    git(git_repo, "commit", "-qam", "task-002 on gemini")
    (git_repo / ".cpo").mkdir()
    (git_repo / ".cpo" / "config.yaml").write_text("default_backend: codex\n")
    done = cpo("run", str(root), "--allow-dirty", cwd=git_repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _task(root, "task-001")["backend"] == "codex"
    assert _task(root, "task-002")["backend"] == "gemini"


def test_config_sandbox_mode_reaches_codex(git_repo: Path, fake_codex: FakeAgent) -> None:
    root = make_spec(git_repo, [{"task-001": DONE.format(name="a")}])
    (git_repo / ".cpo").mkdir()
    (git_repo / ".cpo" / "config.yaml").write_text(
        "backends:\n  codex:\n    sandbox_mode: full\n    approval_mode: none\n"
    )
    cpo("run", str(root), "--backend", "codex", "--allow-dirty", cwd=git_repo)
    argv = fake_codex.calls()[0]["argv"]
    assert argv[argv.index("--sandbox") + 1] == "danger-full-access"
    assert 'approval_policy="never"' in argv


def test_unsupported_option_notes_name_the_backend_once(
    git_repo: Path, fake_codex: FakeAgent, fake_claude: Path
) -> None:
    # Regression: the notes read "codex: codex: has no turn limit ..." and
    # "claude: claude: has no sandbox option ...".
    script = "@script write {name}.py x = 1\n@script commit add {name}\n@script marker"
    root = make_spec(
        git_repo, [{"task-001": script.format(name="a"), "task-002": script.format(name="b")}]
    )
    path = root / "tasks" / "task-002.md"
    path.write_text(path.read_text().replace("id: task-002\n", "id: task-002\nbackend: claude\n"))
    git(git_repo, "commit", "-qam", "task-002 on claude")
    (git_repo / ".cpo").mkdir()
    (git_repo / ".cpo" / "config.yaml").write_text(
        "default_backend: codex\nbackends:\n  claude:\n    sandbox_mode: read-only\n"
    )
    done = cpo("run", str(root), "--max-turns", "4", "--allow-dirty", cwd=git_repo)
    assert done.returncode == 0, done.stdout + done.stderr
    notes = [line for line in done.stderr.splitlines() if line.startswith("note: ")]
    assert notes == [
        "note: codex: has no turn limit; max_turns 4 is not enforced",
        "note: claude: has no sandbox option; sandbox_mode read-only is not enforced "
        "(use permission_mode plan for a read-only run)",
    ]
