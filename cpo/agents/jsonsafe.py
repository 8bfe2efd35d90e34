"""JSON access that never raises: an agent's event stream is input, not a contract.

Every backend's parser reads fields through these, so a renamed or retyped field in a new
CLI version degrades to "unknown" instead of crashing the run; `JsonLinesParser` is the
`feed` of a CLI that prints one JSON event per line (codex, gemini).
"""

from __future__ import annotations

import json

from cpo.agents.base import AgentEvent


def as_dict(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def as_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def as_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def parse_json_line(line: str) -> dict[str, object] | None:
    """The JSON object on this line, or None for anything else (text, arrays, damage)."""
    stripped = line.strip()
    if not stripped.startswith("{"):
        return None
    try:
        data = json.loads(stripped)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


class JsonLinesParser:
    """`EventParser.feed` for one JSON object per line: each goes to `_event`; any other
    line, and an event whose shape `_event` did not expect, is logged as it came."""

    def feed(self, line: str) -> list[AgentEvent]:
        data = parse_json_line(line)
        if data is None:
            return [AgentEvent(log=line)] if line.strip() else []
        try:
            return self._event(data)
        except Exception:  # a surprising shape must never stop a task's log
            return [AgentEvent(log=line)]

    def _event(self, data: dict[str, object]) -> list[AgentEvent]:
        raise NotImplementedError
