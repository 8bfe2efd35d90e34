"""Preflight knows which `agent:` names Claude Code will find, and says which it won't."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import git
from tests.runkit import cpo, make_spec


def _spec_with_agents(repo: Path, agents: dict[str, str]) -> Path:
    root = make_spec(repo, [{tid: "@script marker" for tid in agents}], commit=False)
    for tid, agent in agents.items():
        path = root / "tasks" / f"{tid}.md"
        path.write_text(path.read_text().replace("---\n", f"---\nagent: {agent}\n", 1))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "spec")
    return root


def _agent_file(folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.md").write_text(
        f"---\nname: {name}\ndescription: does {name}\n---\nBe {name}.\n"
    )


def test_unknown_agents_stop_the_run_at_preflight_with_a_suggestion(
    git_repo: Path, fake_claude: Path, tmp_path: Path
) -> None:
    root = _spec_with_agents(
        git_repo, {"task-001": "python-experts:django-expert", "task-002": "reviewr"}
    )
    _agent_file(tmp_path / "home" / ".claude" / "agents", "reviewer")
    out = cpo("run", str(root), cwd=git_repo)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "agent 'python-experts:django-expert' (task-001) is not installed" in out.stderr
    assert "agent 'reviewr' (task-002) is not installed" in out.stderr
    assert "did you mean 'reviewer'?" in out.stderr
    assert not (root / "logs" / "task-001.log").exists()  # nothing ran


def test_plugin_project_and_builtin_agents_are_found(
    git_repo: Path, fake_claude: Path, tmp_path: Path
) -> None:
    plugin = tmp_path / "home" / ".claude" / "plugins" / "cache" / "mkt" / "python-experts" / "1.0"
    (plugin / ".claude-plugin").mkdir(parents=True)
    (plugin / ".claude-plugin" / "plugin.json").write_text(json.dumps({"name": "python-experts"}))
    _agent_file(plugin / "agents", "django-expert")
    _agent_file(git_repo / ".claude" / "agents", "api-designer")
    root = _spec_with_agents(
        git_repo,
        {
            "task-001": "python-experts:django-expert",
            "task-002": "api-designer",
            "task-003": "general-purpose",
        },
    )
    out = cpo("run", str(root), "--dry-run", cwd=git_repo)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "is not installed" not in out.stdout


def test_a_claude_bin_variable_naming_a_missing_file_says_so(
    git_repo: Path, fake_claude: Path, tmp_path: Path
) -> None:
    root = make_spec(git_repo, [{"task-001": "@script marker"}])
    missing = tmp_path / "no" / "claude"
    out = cpo("run", str(root), cwd=git_repo, env={"CPO_CLAUDE_BIN": str(missing)})
    assert out.returncode == 2
    assert f"CPO_CLAUDE_BIN={missing} is not an executable file" in out.stderr
    assert "not found on PATH" not in out.stderr
