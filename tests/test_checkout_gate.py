"""The checkout gate at set-up (cpo.run.worktrees): every first agent waits for the last
`worktree add`, so the adds come first. They hold one of the gate's turns while the first
tasks check out with the others, and the integration worktree, which nothing needs before
the first merge, checks out only after the adds."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import cpo.run.worktrees as worktrees
from cpo.git import Git
from cpo.run.engine import execute
from cpo.run.options import RunOptions
from tests.runkit import make_spec

pytestmark = pytest.mark.usefixtures("fake_claude")

OK = "@script write {f} x\n@script commit add {f}\n@script marker"


def test_adds_go_first_on_the_checkout_gate(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spans: list[tuple[str, Path, float, float]] = []  # (what, cwd, start, end)
    lock = threading.Lock()
    raw = Git._raw

    def slowed(
        self: Git, args: list[str], cwd: Path, stdin: str | None = None
    ) -> tuple[int, str, str]:
        # Slow enough that checkouts and adds overlap whenever the gate lets them.
        what = " ".join(args[:2])
        start = time.monotonic()
        if what in ("worktree add", "reset -q"):
            time.sleep(0.03)
        try:
            return raw(self, args, cwd, stdin)
        finally:
            with lock:
                spans.append((what, cwd, start, time.monotonic()))

    monkeypatch.setattr(worktrees, "CHECKOUTS", 2)  # as on a 2-core machine, on any machine
    monkeypatch.setattr(Git, "_raw", slowed)
    tasks = {f"task-{i:03}": OK.format(f=f"f{i}.txt") for i in range(8)}
    root = make_spec(git_repo, [tasks])
    opts = RunOptions(max_concurrent=4, workspace_root=git_repo.parent / "ws")
    result = execute(root, opts)
    monkeypatch.setattr(Git, "_raw", raw)
    assert result.report.status == "completed"

    integration = Path(result.report.integration_worktree or "").resolve()
    adds = [s for s in spans if s[0] == "worktree add" and s[1].resolve() == git_repo.resolve()]
    resets = [s for s in spans if s[0] == "reset -q"]
    task_adds = adds[1:]  # the first add is the integration worktree's, before the thread
    assert len(task_adds) == 8, adds
    adds_start, adds_end = task_adds[0][2], max(s[3] for s in task_adds)
    first_integration = min(s[2] for s in resets if s[1].resolve() == integration)
    assert first_integration >= adds_end, "the integration checkout went before the adds ended"
    # ... and took the adds' turn: no task checkout queued behind them went first.
    assert not [s for s in resets if adds_end <= s[2] < first_integration], resets
    # While the adds ran, one turn was theirs: never two checkouts at once beside them.
    during = [s for s in resets if s[2] < adds_end and s[3] > adds_start]
    assert during, "no task checked out while the adds ran"
    for a in during:
        overlapping = [b for b in during if b is not a and b[2] < a[3] and b[3] > a[2]]
        assert not overlapping, f"two checkouts beside the adds: {a} {overlapping}"
