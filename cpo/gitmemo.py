"""Set-up checks ask git the same questions several times; a snapshot asks each once.

Preflight reads the worktrees, `git status`, the branches and the common dir in several
checks (local changes, the plan's uncommitted files, leftovers, name clashes), and one
`git status --untracked-files=all` of a 50,000-file checkout costs ~0.2 s. Within
`snapshot(git)` the repository is taken as unchanging and each `@remembered` query runs
once. Only for a single thread that changes nothing meanwhile: the run's set-up checks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    from cpo.git import Git

Memo = dict[tuple[Any, ...], Any]
F = TypeVar("F", bound=Callable[..., Any])


def remembered(method: F) -> F:
    """A `Git` query answered once per snapshot, asked of git every time outside one."""

    @functools.wraps(method)
    def wrapper(self: Git, *args: Any) -> Any:
        if self._memo is None:
            return method(self, *args)
        key = (method.__name__, *args)
        if key not in self._memo:
            self._memo[key] = method(self, *args)
        return self._memo[key]

    return cast(F, wrapper)


@contextmanager
def snapshot(git: Git) -> Iterator[None]:
    git._memo = {}
    try:
        yield
    finally:
        git._memo = None
