"""The git configuration every agent (and cpo's own git) runs with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cpo.git import Git

IDENTITY_FIX = (
    'git config --global user.name "Your Name" && git config --global user.email you@example.com'
)


def agent_git_env(base: Mapping[str, str]) -> dict[str, str]:
    """Environment additions for agents: no background gc while cpo manages worktrees."""
    env = dict(base)
    count = int(env.get("GIT_CONFIG_COUNT", "0") or 0)
    env[f"GIT_CONFIG_KEY_{count}"] = "gc.auto"
    env[f"GIT_CONFIG_VALUE_{count}"] = "0"
    env["GIT_CONFIG_COUNT"] = str(count + 1)
    return env


def identity_problem(git: Git) -> str | None:
    """Why git cannot commit in `git`'s repository for lack of a name or email, with the
    fix; or None. `git var GIT_COMMITTER_IDENT` applies the same strict rules as `git commit`."""
    root = git.root
    for var in ("GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT"):
        code, _, err = git._raw(["var", var], root)
        if code != 0:
            why = (err.strip().splitlines() or [f"exit {code}"])[-1]
            return (
                f"git has no user identity for commits in {root} ({why}): "
                f"set one with `{IDENTITY_FIX}` (or in this repository without --global)"
            )
    return None
