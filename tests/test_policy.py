"""The run's policy (cpo.run.policy): flag > manifest > repo config > default."""

from __future__ import annotations

from pathlib import Path

import pytest

from cpo.config import ConfigError, load_settings
from cpo.run.policy import Policy, resolve_policy
from cpo.settings import Settings


def settings_with(repo: Path, text: str) -> Settings:
    (repo / ".cpo").mkdir(exist_ok=True)
    (repo / ".cpo" / "config.yaml").write_text(text)
    return load_settings(repo)


def test_defaults(tmp_path: Path) -> None:
    assert resolve_policy(load_settings(tmp_path), {}) == Policy(1, 1, True, 4000, False)


def test_flag_beats_manifest_beats_config(tmp_path: Path) -> None:
    settings = settings_with(tmp_path, "run: {repair: 3, nudges: 0, handoff_limit: 900}\n")
    policy = resolve_policy(settings, {"repair": 2, "handoff": False}, repair=5)
    assert (policy.repair, policy.nudges, policy.handoff, policy.handoff_limit) == (
        5,
        0,
        False,
        900,
    )
    assert resolve_policy(settings, {"repair": 2}).repair == 2
    assert resolve_policy(settings, {}, strict_scope=True).strict_scope is True


def test_bad_config_value_names_file_and_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        settings_with(tmp_path, "run: {nudges: -1}\n")
    assert "config.yaml: run.nudges: Input should be greater than or equal to 0" in str(
        err.value.lines()
    )
