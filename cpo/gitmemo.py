"""Set-up checks ask git the same questions several times; a snapshot asks each once.

Preflight reads the worktrees, `git status`, the branches and the common dir in several
checks (local changes, the plan's uncommitted files, leftovers, name clashes), and one
`git status --untracked-files=all` of a 50,000-file checkout costs ~0.2 s. Within
`snapshot(git)` the repository is taken as unchanging and each `@remembered` query runs
once. Only for a single thread that changes nothing meanwhile: the run's set-up checks.

`ask_ahead` goes one step further: `cpo run` starts those queries on a thread before it
imports the engine (~0.2 s of Python on one core, while git works on another), and the
first snapshot takes their answers. Answers are only taken inside a snapshot, where
the repository is taken as unchanging anyway, and those not taken are dropped when it
ends: nothing stale is read later.
"""

from __future__ import annotations

import functools
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    from cpo.gitrun import GitRunner

Memo = dict[tuple[Any, ...], Any]
F = TypeVar("F", bound=Callable[..., Any])


def remembered(method: F) -> F:
    """A `Git` query answered once per snapshot, asked of git every time outside one."""

    @functools.wraps(method)
    def wrapper(self: GitRunner, *args: Any) -> Any:
        if self._memo is None:
            return method(self, *args)
        key = (method.__name__, *args)
        if key not in self._memo:
            self._memo[key] = method(self, *args)
        return self._memo[key]

    return cast(F, wrapper)


@contextmanager
def snapshot(git: GitRunner) -> Iterator[None]:
    git._memo = {}
    try:
        yield
    finally:
        git._memo = None
        _ahead.drop()


# What the set-up of `cpo run` is sure to ask (Git.status_entries, worktrees,
# local_branches, common_dir, gitenv.identity_problem), exactly as those ask it.
SET_UP_QUERIES: tuple[tuple[str, ...], ...] = (
    ("status", "--porcelain", "-z", "--untracked-files=all"),
    ("worktree", "list", "--porcelain"),
    ("for-each-ref", "--format=%(refname)", "refs/heads/"),
    ("var", "GIT_AUTHOR_IDENT"),
    ("var", "GIT_COMMITTER_IDENT"),
    ("rev-parse", "--path-format=absolute", "--git-common-dir"),
)


@dataclass
class _Ahead:
    """The answers of `ask_ahead`: (cwd, args) -> (exit code, stdout, stderr)."""

    env: Mapping[str, str] | None = None
    answers: dict[tuple[str, tuple[str, ...]], tuple[int, str, str]] = field(default_factory=dict)
    thread: threading.Thread | None = None

    def drop(self) -> None:
        if self.thread is not None:
            self.thread.join()  # a `git status` may write the index: never cut short
        with _lock:
            self.answers, self.thread, self.env = {}, None, None


_ahead = _Ahead()
_lock = threading.Lock()


def ask_ahead(root: Path, env: Mapping[str, str]) -> None:
    """Start the set-up's queries in `root` (a repository's top) on a thread, with the
    environment cpo's git runs with (Git's)."""
    _ahead.drop()

    def ask() -> None:
        for args in SET_UP_QUERIES:
            proc = subprocess.run(
                ["git", *args], cwd=root, env=dict(env), capture_output=True, text=True, check=False
            )
            with _lock:
                _ahead.answers[(str(root), args)] = (proc.returncode, proc.stdout, proc.stderr)

    _ahead.env = env
    # Not a daemon: a `git status` may be writing the index, never cut short at exit.
    _ahead.thread = threading.Thread(target=ask, name="git-ahead")
    _ahead.thread.start()


def answer(git: GitRunner, args: Sequence[str], cwd: Path) -> tuple[int, str, str] | None:
    """The answer asked ahead for this query, if any (once); only inside a snapshot."""
    if git._memo is None or _ahead.thread is None or _ahead.env != git._env:
        return None
    key = (str(cwd), tuple(args))
    if key[1] not in SET_UP_QUERIES:
        return None
    _ahead.thread.join()
    with _lock:
        return _ahead.answers.pop(key, None)
