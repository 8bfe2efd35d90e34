"""The README table of what each agent CLI gets for each neutral approval and sandbox mode.

Above every backend module (it reads their mappings), so no backend imports it.
"""

from __future__ import annotations

from cpo.agents import claude, codex, gemini
from cpo.agents.modes import APPROVAL_MODES, SANDBOX_MODES


def mapping_table() -> str:
    """The README table: each neutral mode and what each CLI gets for it."""
    rows = ["| option | claude | codex | gemini |", "|---|---|---|---|"]
    for option, modes, tables in (
        ("approval_mode", APPROVAL_MODES, [m.APPROVAL_FLAGS for m in (claude, codex, gemini)]),
        ("sandbox_mode", SANDBOX_MODES, [m.SANDBOX_FLAGS for m in (claude, codex, gemini)]),
    ):
        for mode in modes:
            rows.append(f"| `{option}: {mode}` | " + " | ".join(t[mode] for t in tables) + " |")
    return "\n".join(rows)


__all__ = ["mapping_table"]
