"""Settings files and the precedence flag > task > manifest > repo > user > default."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cpo.config import ConfigError, load_settings, show_rows, user_config_path


def write_user(text: str) -> Path:
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "cpo" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def write_repo(repo: Path, text: str) -> Path:
    path = repo / ".cpo" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# -- one test per precedence level -----------------------------------------------------
def test_level_default_when_no_file(git_repo: Path) -> None:
    s = load_settings(git_repo)
    assert s.resolve("parallel.max_workers") == (3, "default")
    assert s.parallel.max_workers == 3
    assert s.parallel.fail_fast is False
    assert s.timeouts.task == 7200.0
    assert s.timeouts.idle is None
    assert s.workspace_root == "../workspaces/<repo folder name>"
    assert s.backend("claude").model is None
    assert s.files == ()


def test_level_user_config_over_default(git_repo: Path) -> None:
    path = write_user("parallel:\n  max_workers: 5\nbackends:\n  claude:\n    model: opus\n")
    s = load_settings(git_repo)
    assert s.resolve("parallel.max_workers") == (5, f"user config {path}")
    assert s.backend("claude").model == "opus"
    assert s.files == (path,)


def test_level_repo_config_over_user_config(git_repo: Path) -> None:
    write_user("parallel:\n  max_workers: 5\n  fail_fast: true\n")
    repo_path = write_repo(git_repo, "parallel:\n  max_workers: 2\n")
    s = load_settings(git_repo)
    assert s.resolve("parallel.max_workers") == (2, f"repo config {repo_path}")
    # a key the repo file does not set still comes from the user file
    assert s.parallel.fail_fast is True
    assert s.sources["parallel.fail_fast"].startswith("user config ")


def test_level_manifest_over_repo_config(git_repo: Path) -> None:
    write_repo(git_repo, "parallel:\n  max_workers: 2\n")
    s = load_settings(git_repo)
    assert s.resolve("parallel.max_workers", manifest=4) == (4, "manifest")


def test_level_task_over_manifest(git_repo: Path) -> None:
    write_repo(git_repo, "backends:\n  codex:\n    model: from-repo\n")
    s = load_settings(git_repo)
    assert s.resolve("backends.codex.model", task="from-task", manifest="from-manifest") == (
        "from-task",
        "task",
    )


def test_level_flag_over_everything(git_repo: Path) -> None:
    write_user("backends:\n  codex:\n    model: from-user\n")
    write_repo(git_repo, "backends:\n  codex:\n    model: from-repo\n")
    s = load_settings(git_repo)
    assert s.resolve(
        "backends.codex.model", flag="from-flag", task="from-task", manifest="from-manifest"
    ) == ("from-flag", "flag")


# -- file handling -----------------------------------------------------------------------
def test_repo_root_found_from_cwd(git_repo: Path) -> None:
    write_repo(git_repo, "workspace_root: /tmp/ws\n")
    sub = git_repo / "a" / "b"
    sub.mkdir(parents=True)
    s = load_settings(None, cwd=sub)
    assert s.workspace_root == "/tmp/ws"


def test_user_path_honours_xdg(tmp_path: Path) -> None:
    assert user_config_path({"XDG_CONFIG_HOME": str(tmp_path / "x"), "HOME": "/nope"}) == (
        tmp_path / "x" / "cpo" / "config.yaml"
    )
    assert user_config_path({"HOME": str(tmp_path)}) == tmp_path / ".config" / "cpo" / "config.yaml"


def test_backend_settings_all_keys_and_extra_flags_alias(git_repo: Path) -> None:
    write_repo(
        git_repo,
        "backends:\n"
        "  gemini:\n"
        "    model: gemini-2.5-pro\n"
        "    max_turns: 12\n"
        "    approval_mode: auto\n"
        "    sandbox_mode: read-only\n"
        "    extra_flags: [--debug]\n"
        "  claude:\n"
        "    permission_mode: acceptEdits\n"
        "    extra_args: [--foo, bar]\n",
    )
    s = load_settings(git_repo)
    g = s.backend("gemini")
    assert (g.model, g.max_turns, g.approval_mode, g.sandbox_mode, g.extra_args) == (
        "gemini-2.5-pro",
        12,
        "auto",
        "read-only",
        ("--debug",),
    )
    assert s.backend("claude").permission_mode == "acceptEdits"
    assert s.backend("claude").extra_args == ("--foo", "bar")


def test_durations(git_repo: Path) -> None:
    write_repo(git_repo, "timeouts:\n  task: 1.5h\n  idle: 90\n")
    s = load_settings(git_repo)
    assert s.timeouts.task == 5400.0
    assert s.timeouts.idle == 90.0
    # shown back the way the file writes them
    shown = {key: value for key, value, _ in show_rows(s)}
    assert shown["timeouts.task"] == "90m" and shown["timeouts.idle"] == "90s"


@pytest.mark.parametrize(
    ("value", "needle"),
    [("-5", "more than 0"), ("0", "more than 0"), ("soon", "such as 90s, 20m, 1.5h")],
)
def test_bad_durations_name_the_field(git_repo: Path, value: str, needle: str) -> None:
    write_repo(git_repo, f"timeouts:\n  task: {value}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(git_repo)
    assert "timeouts.task" in info.value.lines()[0] and needle in info.value.lines()[0]


def test_misspelt_keys_warn_with_suggestion(git_repo: Path) -> None:
    path = write_repo(
        git_repo,
        "paralel:\n  max_workers: 2\nparallel:\n  max_worker: 4\nbackends:\n"
        "  codx:\n    model: x\n  claude:\n    modle: y\n",
    )
    s = load_settings(git_repo)
    text = "\n".join(s.warnings)
    assert f"{path}: paralel: not a setting, ignored; did you mean 'parallel'?" in text
    assert "parallel.max_worker: not a setting, ignored; did you mean 'max_workers'?" in text
    assert "backends.codx: not a backend, ignored; did you mean 'codex'?" in text
    assert "backends.claude.modle: not a setting, ignored; did you mean 'model'?" in text
    assert s.parallel.max_workers == 3  # nothing misspelt was applied


def test_bad_values_are_one_line_each_naming_file_and_field(git_repo: Path) -> None:
    path = write_repo(
        git_repo,
        "parallel:\n  max_workers: 0\n  fail_fast: maybe\n"
        "backends:\n  codex:\n    approval_mode: sometimes\n"
        "timeouts:\n  task: soon\n",
    )
    with pytest.raises(ConfigError) as info:
        load_settings(git_repo)
    lines = info.value.lines()
    assert len(lines) == 4
    assert all(line.startswith(f"{path}: ") for line in lines)
    joined = "\n".join(lines)
    assert "parallel.max_workers: Input should be greater than or equal to 1 (got 0)" in joined
    assert "parallel.fail_fast:" in joined
    assert "backends.codex.approval_mode:" in joined and "'sometimes'" in joined
    assert "timeouts.task: expected seconds" in joined


def test_invalid_yaml_and_wrong_top_level(git_repo: Path) -> None:
    path = write_user("parallel: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_settings(git_repo)
    assert info.value.lines()[0].startswith(f"{path}: not valid YAML at line ")
    write_user("- a\n- b\n")
    with pytest.raises(ConfigError) as info:
        load_settings(git_repo)
    assert "expected a mapping" in info.value.lines()[0]


def test_unknown_default_backend_is_an_error(git_repo: Path) -> None:
    write_repo(git_repo, "default_backend: gpt\n")
    with pytest.raises(ConfigError) as info:
        load_settings(git_repo)
    assert "default_backend: unknown backend 'gpt'" in info.value.lines()[0]


def test_resolve_unknown_key_raises(git_repo: Path) -> None:
    with pytest.raises(KeyError):
        load_settings(git_repo).resolve("parallel.max_wrkers")
