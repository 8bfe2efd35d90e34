"""How a run gets past obstacles: the effective repair, nudge, handoff, scope and conflict
options.

Each by precedence flag > manifest > repo config > user config > default (cpo.config,
section `run`). README, "When things go wrong".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cpo.plan.model import OnConflict
from cpo.settings import Settings


@dataclass(frozen=True)
class Policy:
    repair: int = 1  # repair agents per failed wave validation (cpo.run.repair)
    nudges: int = 1  # continuations of an agent's session that stopped early (cpo.run.nudge)
    handoff: bool = True  # dependents' prompts say what their dependencies built
    handoff_limit: int = 4000  # characters of that section (cpo.plan.handoff)
    strict_scope: bool = False  # a file changed outside a task's scope fails it
    on_conflict: OnConflict = "rerun"  # what a conflicting merge leads to (cpo.run.conflicts)


def resolve_policy(
    settings: Settings,
    manifest: Mapping[str, object],
    *,
    repair: int | None = None,
    nudges: int | None = None,
    strict_scope: bool | None = None,
    on_conflict: OnConflict | None = None,
) -> Policy:
    """The run's policy from its flags, the manifest's keys (Plan.run_keys) and settings."""
    flags: dict[str, object] = {
        "repair": repair,
        "nudges": nudges,
        "strict_scope": strict_scope,
        "on_conflict": on_conflict,
    }

    def pick(key: str) -> object:
        return settings.resolve(f"run.{key}", flag=flags.get(key), manifest=manifest.get(key))[0]

    return Policy(
        repair=int(str(pick("repair"))),
        nudges=int(str(pick("nudges"))),
        handoff=bool(pick("handoff")),
        handoff_limit=int(str(pick("handoff_limit"))),
        strict_scope=bool(pick("strict_scope")),
        on_conflict=pick("on_conflict"),  # type: ignore[arg-type]  # schemas and CLI check it
    )
