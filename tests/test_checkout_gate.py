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
from tests.conftest import git
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
    # While the adds ran, one turn was theirs: never two checkouts at once beside them.
    during = [s for s in resets if s[2] < adds_end and s[3] > adds_start]
    assert during, "no task checked out while the adds ran"
    for a in during:
        overlapping = [b for b in during if b is not a and b[2] < a[3] and b[3] > a[2]]
        assert not overlapping, f"two checkouts beside the adds: {a} {overlapping}"


def test_the_integration_checkout_goes_before_queued_launches(git_repo: Path) -> None:
    """When the adds end, their turn goes to the integration checkout, not to a task that
    waits for a checkout turn (it waits for an agent slot too, i.e. for the first merge,
    which needs the integration worktree)."""
    made = worktrees.RunWorktrees(Git(git_repo))
    made._checkouts = worktrees.Slots(2, threading.Event())
    base = git(git_repo, "rev-parse", "HEAD")
    integration = git_repo.parent / "ws" / "integration"
    git(git_repo, "worktree", "add", "-q", "--no-checkout", "-b", "integ", str(integration))
    index = Path(git(integration, "rev-parse", "--path-format=absolute", "--git-path", "index"))

    assert made._checkouts.acquire()  # a first task's checkout, running all along
    adding = threading.Event()
    add = Git.add_worktree

    def slow_add(self: Git, *args: object, **kwargs: object) -> None:
        adding.wait(10)  # until the task below waits for its turn
        add(self, *args, **kwargs)  # type: ignore[arg-type]

    queued_saw_integration: list[bool] = []

    def queued_launch() -> None:
        ticket = made._checkouts.ticket()
        adding.set()
        assert made._checkouts.acquire(ticket)
        queued_saw_integration.append(index.exists())
        made._checkouts.release()

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Git, "add_worktree", slow_add)
        made.add_in_background(
            [(git_repo.parent / "ws" / f"t{i}", f"t{i}") for i in range(3)], base
        )
        made.check_out_integration(integration)
        launch = threading.Thread(target=queued_launch)
        launch.start()
        made.wait_added()
    assert made._integration is not None
    made._integration.join(10)
    made._checkouts.release()  # the first task's checkout ends
    launch.join(10)
    assert index.exists(), "the integration worktree was not checked out"
    assert queued_saw_integration == [True], "a queued launch took the turn before it"
