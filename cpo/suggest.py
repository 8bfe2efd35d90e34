"""Did-you-mean: the known name closest to a misspelt one.

One cutoff for every suggestion cpo makes (ids, keys, backends, settings). 0.75 still
catches a dropped, doubled or swapped letter (`task-02`, `claud`, `max_worker`) but not
mere resemblance, which matters for keys from other tools that cpo keeps and ignores
(`title` is not a misspelt `file`, nor `tags` a misspelt `tasks`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

CUTOFF = 0.75


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name `name` was most likely meant to be, or None."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=CUTOFF)
    return close[0] if close else None


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """ "; did you mean 'x'?" to append to a message, or "" when nothing is close."""
    match = closest(name, known)
    return f"; did you mean {match!r}?" if match else ""
