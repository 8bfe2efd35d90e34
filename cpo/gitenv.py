"""The git configuration every agent (and cpo's own git) runs with."""

from __future__ import annotations

from collections.abc import Mapping


def agent_git_env(base: Mapping[str, str]) -> dict[str, str]:
    """Environment additions for agents: no background gc while cpo manages worktrees."""
    env = dict(base)
    count = int(env.get("GIT_CONFIG_COUNT", "0") or 0)
    env[f"GIT_CONFIG_KEY_{count}"] = "gc.auto"
    env[f"GIT_CONFIG_VALUE_{count}"] = "0"
    env["GIT_CONFIG_COUNT"] = str(count + 1)
    return env
