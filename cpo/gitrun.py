"""Running the git binary: where each of cpo's git processes starts.

`GitRunner` is the base of `cpo.git.Git` and is used only through it: cpo runs git through
that one class (README, "Git through the git binary"). Every call goes through `_raw`,
which calls the git binary (exact control, no parsing of porcelain through another
layer) with the environment of the agents' git; `run` retries when another git process
holds a lock. What cpo asks git, and which calls take `Git.lock`, is `cpo.git`'s.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from cpo.errors import GitError
from cpo.gitenv import agent_git_env
from cpo.gitmemo import Memo, answer

# Another git process holds a lock we need: wait and try again rather than fail the run.
_LOCK_CONTENTION = re.compile(
    r"index\.lock|config\.lock|packed-refs|\.lock': File exists|cannot lock ref|"
    r"Unable to create '.*\.lock'|could not lock|failed to read .*commondir",
    re.IGNORECASE,
)
_RETRIES = 12

# Test hook, never set in use: SIGKILL cpo itself right after its Nth git call, so tests
# can prove that a kill after any git step is recovered by --resume (tests/test_kill_steps.py).
KILL_AFTER_GIT_CALL = "CPO_TEST_KILL_AFTER_GIT_CALL"
_calls = itertools.count(1)  # next() on a count is atomic under the GIL


class GitRunner:
    """Git processes in one repository (`root`): the environment, retries, the test hook."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # cpo's own git calls run with gc.auto=0 like the agents' (agent_git_env); the
        # user's own GIT_CONFIG_* entries are kept. No identity is ever invented: commits
        # are the user's, and preflight says when git has none (gitenv.identity_problem).
        self._env = {**agent_git_env(os.environ), "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
        self._memo: Memo | None = None  # see cpo.gitmemo.snapshot

    def _raw(
        self, args: Sequence[str], cwd: Path, stdin: str | None = None
    ) -> tuple[int, str, str]:
        early = answer(self, args, cwd)  # the set-up's, asked ahead (cpo.gitmemo)
        if early is not None:
            return early
        proc = subprocess.run(["git", *args], cwd=cwd, env=self._env, capture_output=True,
                              text=True, check=False, input=stdin)  # fmt: skip
        kill_at = os.environ.get(KILL_AFTER_GIT_CALL)
        if kill_at and next(_calls) == int(kill_at):
            os.kill(os.getpid(), signal.SIGKILL)
        return proc.returncode, proc.stdout, proc.stderr

    def run(self, *args: str, cwd: Path | None = None, check: bool = True) -> str:
        """Run git; return stdout stripped. Retries on lock contention; GitError on failure."""
        where = cwd or self.root
        delay = 0.05
        for attempt in range(_RETRIES):
            code, out, err = self._raw(args, where)
            if code == 0 or not check:
                return out.strip()
            if _LOCK_CONTENTION.search(err) and attempt < _RETRIES - 1:
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            break
        first = (err.strip() or out.strip()).splitlines()
        raise GitError(
            f"git {' '.join(args)} failed in {where}: {first[0] if first else f'exit {code}'}"
        )

    def ok(self, *args: str, cwd: Path | None = None) -> bool:
        code, _, _ = self._raw(args, cwd or self.root)
        return code == 0
