"""Durations as people write them: plain seconds, or a number with s, m or h.

One parser and one printer for every place cpo reads or shows a duration (task keys,
manifest, config files, command-line flags): `90`, `90s`, `20m`, `1.5h` all work
everywhere, and cpo prints them back in the same form.
"""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator, WithJsonSchema

# The sign is matched only to say "must be more than 0" rather than "not a duration".
_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([smh]?)\s*$")
_UNIT = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}
HINT = "seconds, or a number with s/m/h such as 90s, 20m, 1.5h"
# What the JSON Schema accepts: the same strings, minus the negative and all-zero ones.
_SCHEMA_PATTERN = r"^\s*(?=[0.]*[1-9])\d+(\.\d+)?\s*[smh]?\s*$"


def parse_duration(value: object, *, allow_zero: bool = False) -> float:
    """Seconds from a number or a string such as "90", "90s", "20m", "1.5h".

    Raises ValueError (with a message fit for the user) for anything else, and for a
    negative duration, or zero unless `allow_zero`.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNIT[m.group(2)]
    else:
        raise ValueError(f"expected {HINT}, not {_shown(value)}")
    if not math.isfinite(seconds):
        raise ValueError(f"expected {HINT}, not {_shown(value)}")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        floor = "0 seconds or more" if allow_zero else "more than 0 seconds"
        raise ValueError(f"must be {floor} (got {_shown(value)})")
    return seconds


def format_duration(seconds: float) -> str:
    """A duration as cpo prints it, in the form the input files take: 2h, 30m, 90s, 2.5s."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# A positive duration in a pydantic model: seconds, or "90s", "20m", "1.5h".
Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {"type": "string", "pattern": _SCHEMA_PATTERN},
            ],
            "description": HINT,
        }
    ),
]
