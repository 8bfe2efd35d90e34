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
    """Environment additions for agents (and cpo's own git): no background gc or
    maintenance while cpo manages worktrees. `maintenance.auto=false` also spares every
    commit and merge a `git maintenance run --auto` process that gc.auto=0 leaves nothing
    to do (a few ms on the way from an agent's end to its dependent's start)."""
    env = dict(base)
    count = int(env.get("GIT_CONFIG_COUNT", "0") or 0)
    for i, (key, value) in enumerate((("gc.auto", "0"), ("maintenance.auto", "false"))):
        env[f"GIT_CONFIG_KEY_{count + i}"] = key
        env[f"GIT_CONFIG_VALUE_{count + i}"] = value
    env["GIT_CONFIG_COUNT"] = str(count + 2)
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
