"""Agents' own git commands against cpo's worktree set-up: runs, tasks, failed runs.

    .venv/bin/python bench/bench_worktree_race.py [--runs 100] [--tasks 30] [-j 4 16] [--quick]

Each agent runs `git status; git branch; git worktree list; git log -3` in a loop while it
works (as Claude Code does), then commits a file and writes the completion marker. An
agent whose git command fails exits 1, so a reader that tripped over another worktree's
half-written metadata (`failed to read .git/worktrees/<x>/commondir`, `.../locked`) fails
its task, and so does a cpo git call that trips. A run fails when any task does.

The scratch folder is on the disk (default /var/tmp; a RAM filesystem hides the race): the
script prints which filesystem it used.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

from _common import (
    MARKER,
    bench_env,
    clone,
    cpo_argv,
    load_note,
    load_report,
    machine,
    make_template,
    measure,
    round_load,
    table,
    task_ids,
    write_spec,
)

READERS = "git status -s && git branch && git worktree list && git log -3 --oneline"
AGENT = (
    f"for i in 1 2 3 4 5 6; do {{ {READERS}; }} >/dev/null || exit 1; done && "
    'printf "%s\\n" "$CPO_TASK_ID" > "out-$CPO_TASK_ID.txt" && '
    'git add "out-$CPO_TASK_ID.txt" && git commit -q -m "$CPO_TASK_ID" && '
    f"{{ {READERS}; }} >/dev/null && : > {MARKER}"
)


def filesystem(path: Path) -> str:
    out = subprocess.run(["df", "-T", str(path)], capture_output=True, text=True).stdout
    lines = out.splitlines()
    return " ".join(lines[-1].split()[:2]) if len(lines) > 1 else "unknown"


def one_run(
    tmp: Path, template: Path, n: int, j: int, env: dict[str, str], number: int
) -> list[str]:
    """Run n reading agents at -j; the failed tasks' reasons (empty: the run passed)."""
    where = tmp / f"run-{j}-{number}"
    repo = clone(template, where / "repo", env)
    pdir = write_spec(repo, {t: [] for t in task_ids(n)}, env=env)
    args = ["--quiet", "--backend", "command", "--agent-command", AGENT, "-j", str(j)]
    m = measure(cpo_argv("run", str(pdir), *args), repo, env)
    try:
        tasks = load_report(pdir)["tasks"].values()
    except (OSError, ValueError):
        return [f"no report (exit {m.returncode}): {m.stderr.strip()[-300:]}"]
    failed = [
        f"{t['id']}: {t.get('reason')}: {(t.get('error') or '')[:200]}"
        for t in tasks
        if not (t["status"] == "completed" and t["merged"])
    ]
    if m.returncode != 0 and not failed:
        failed = [f"exit {m.returncode}: {m.stderr.strip()[-300:]}"]
    shutil.rmtree(where, ignore_errors=True)
    return failed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=100, help="runs per concurrency")
    ap.add_argument("--tasks", type=int, default=30)
    ap.add_argument("-j", type=int, nargs="+", default=[4, 16], help="concurrencies")
    ap.add_argument("--dir", default="/var/tmp", help="scratch folder (on the disk, not RAM)")
    ap.add_argument("--quick", action="store_true", help="smallest run: proves the script works")
    a = ap.parse_args()
    runs, n, js = (1, 4, [2]) if a.quick else (a.runs, a.tasks, a.j)
    tmp = Path(tempfile.mkdtemp(prefix="cpo-bench-race-", dir=a.dir))
    (tmp / "home").mkdir()
    print(f"worktree race: {machine()}; scratch {tmp} on {filesystem(tmp)}", flush=True)
    rows = []
    try:
        env = bench_env(tmp / "home")
        template = make_template(tmp / "template", 50, env)
        for j in js:
            failed_runs = 0
            with round_load(f"-j {j}: {runs} runs"):  # failures counted, not timed
                for number in range(runs):
                    failures = one_run(tmp, template, n, j, env, number)
                    if failures:
                        failed_runs += 1
                        print(f"  -j {j} run {number + 1}: {len(failures)} failed", flush=True)
                        for line in failures[:3]:
                            print(f"      {line}", flush=True)
            rows.append([f"-j {j}", str(runs), str(n), str(failed_runs)])
            print("  " + " · ".join(rows[-1]), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(table(["concurrency", "runs", "tasks per run", "failed runs"], rows))
    print(load_note())


if __name__ == "__main__":
    main()
