"""How `cpo status` looks on a terminal: the run's state, waves and task table (rich), drawn
once or redrawn while the run goes on (`--watch`). `--json` does not come here.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cpo.commands.status import Status


def _duration(secs: float | None) -> str:
    if secs is None:
        return "-"
    s = int(secs)
    if s >= 3600:
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


# `cpo status` lists at most this many tasks (unfinished first) unless --all.
STATUS_ROWS = 50


def status_renderable(st: Status, rows: int | None = STATUS_ROWS) -> Any:
    """Run status, waves, the task table (shared with the live view; at most `rows` rows,
    all when None), totals, next step."""
    import time

    from rich.console import Group
    from rich.text import Text

    from cpo.commands.status import clock_for, task_elapsed
    from cpo.run.progress import STATUS_STYLE, render_table, render_waves

    r, live = st.report, st.live
    style = {"stopped": "magenta", "starting": "cyan"}.get(live.state) or STATUS_STYLE.get(
        live.state, ""
    )
    head = Text(f"cpo · {r.spec_id} · ", style="bold")
    head.append(live.message, style=f"bold {style}")
    head.append(f" · elapsed {_duration(live.elapsed_seconds)}")
    now = time.monotonic()
    elapsed = task_elapsed(r, clock_for(r, live.state, st.parallel_dir))
    started = {tid: now - secs for tid, secs in elapsed.items()}
    t = r.totals()
    commits = sum(rec.commits for rec in r.tasks.values())
    totals = (
        f"{t['completed']}/{t['tasks']} tasks completed"
        + (f", {t['failed']} failed" if t["failed"] else "")
        + (f", {t['skipped']} skipped" if t["skipped"] else "")
        + f", {commits} commit{'s' if commits != 1 else ''}"
        + (f", ${t['cost_usd']:.2f}" if t["cost_usd"] else "")
    )
    table = render_table(r, started, rows, more="--all lists every task")
    parts: list[Any] = [head, render_waves(r), table, Text(totals)]
    if r.base_branch:
        branches = f"base {r.base_branch}"
        if r.integration_branch:
            branches += f" · integration {r.integration_branch}"
        parts.append(Text(branches, style="dim"))
    if r.paused_until:
        parts.append(Text(f"launches paused by a usage limit until {r.paused_until}", "yellow"))
    if live.next_step:
        parts.append(Text(f"next: {live.next_step}"))
    return Group(*parts)


def show_status(st: Status, rows: int | None = STATUS_ROWS) -> None:
    from rich.console import Console

    Console(highlight=False, width=None if sys.stdout.isatty() else 160).print(
        status_renderable(st, rows)
    )


def watch_status(
    parallel_dir: Path, interval: float = 0.5, rows: int | None = STATUS_ROWS
) -> Status:
    """Redraw the status until the run is no longer active (or Ctrl-C); return the last.

    report.json is re-read only when its mtime changes; between checks we sleep, which is
    fine for a viewer. Off a terminal, the whole status is printed again at each change.
    """
    import time

    from rich.console import Console
    from rich.live import Live

    from cpo.commands.status import Status, compute_live, read_status, report_mtime
    from cpo.errors import UsageError

    st = read_status(parallel_dir)
    seen = report_mtime(st.parallel_dir)

    def refresh(current: Status) -> tuple[Status, bool]:
        nonlocal seen
        mtime = report_mtime(current.parallel_dir)
        if mtime == seen:
            # The lock holder may have died without the report changing.
            return Status(
                current.parallel_dir,
                current.report,
                compute_live(current.parallel_dir, current.report),
            ), False
        try:
            new = read_status(current.parallel_dir)
        except UsageError:
            return current, False  # mid-replacement or moved away: keep the last good one
        seen = mtime
        return new, True

    screen = Console(highlight=False)
    try:
        if screen.is_terminal:
            # What does not fit the screen is cropped: draw no more rows than fit.
            fit = max(5, screen.height - 8)
            rows = fit if rows is None else min(rows, fit)
            with Live(status_renderable(st, rows), console=screen, refresh_per_second=2) as live:
                while st.live.active:
                    time.sleep(interval)
                    st, _ = refresh(st)
                    live.update(status_renderable(st, rows))
        else:
            show_status(st, rows)
            while st.live.active:
                time.sleep(interval)
                st, changed = refresh(st)
                if changed or not st.live.active:
                    print(flush=True)
                    show_status(st, rows)
                    sys.stdout.flush()
    except KeyboardInterrupt:
        pass  # leaving a viewer is not an error
    return st
