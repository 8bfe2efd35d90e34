"""Recovery from a kill at every git step: runs, steps, failures.

    .venv/bin/python bench/bench_recovery.py [--tasks 4] [--waves 2] [--quick]

cpo is made to SIGKILL itself right after its Nth git call (its test hook
CPO_TEST_KILL_AFTER_GIT_CALL), for N = 1, 2, ... until a run ends before its Nth call;
after each kill, `cpo run --resume` runs to the end. A step fails when the resumed run
does not complete, a task is not merged exactly once or its file is wrong, the
integration worktree is not clean, or any branch holds a commit that deletes a file
(the agents only add files: such a commit is an empty worktree committed as "work").
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from _common import (
    MARKER,
    bench_env,
    cpo_argv,
    load_note,
    load_report,
    machine,
    make_template,
    round_load,
    scratch,
    sh,
    table,
    task_ids,
    write_spec,
)

KILL_AFTER = "CPO_TEST_KILL_AFTER_GIT_CALL"  # cpo/gitrun.py; spelled out: bench imports no cpo
AGENT = (
    'printf "%s\\n" "$CPO_TASK_ID" > "out-$CPO_TASK_ID.txt" && git add "out-$CPO_TASK_ID.txt" '
    f'&& git commit -q -m "$CPO_TASK_ID" && : > {MARKER}'
)
ARGS = ("--quiet", "--backend", "command", "--agent-command", AGENT, "-j", "2")


def busy(folder: Path) -> bool:
    """Some process still works in `folder` (the killed run's agent, before the watchdog)."""
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.readlink(entry / "cwd").startswith(str(folder)):
                return True
        except OSError:
            continue
    return False


def problems(repo: Path, pdir: Path, tasks: list[str], env: dict[str, str]) -> list[str]:
    found = []
    data = load_report(pdir)
    if data["status"] != "completed":
        found.append(f"run {data['status']}")
    integ = data["integration_branch"]
    merges = sh(["git", "log", "--merges", "--format=%s", integ], repo, env).splitlines()
    for task in tasks:
        times = sum(f" ({task}, wave " in m for m in merges)
        if times != 1:
            found.append(f"{task} merged {times} times")
        elif sh(["git", "show", f"{integ}:out-{task}.txt"], repo, env) != task:
            found.append(f"out-{task}.txt wrong")
    if sh(["git", "log", "--all", "--diff-filter=D", "--format=%h %s"], repo, env):
        found.append("a commit deletes files")
    if sh(["git", "status", "--porcelain"], Path(data["integration_worktree"]), env):
        found.append("integration worktree not clean")
    return found


def failed_tasks(pdir: Path) -> str:
    try:
        tasks = load_report(pdir)["tasks"].values()
    except (OSError, ValueError):
        return "no report"
    bad = [t for t in tasks if t["status"] != "completed"]
    return "; ".join(f"{t['id']} {t['status']} {t.get('reason')}: {t.get('error')}" for t in bad)


def one_step(
    tmp: Path, template: Path, step: int, tasks: list[str], env: dict[str, str]
) -> list[str] | None:
    """Kill after git call `step`, resume; the problems found, or None: no kill happened."""
    where = tmp / f"step-{step}"
    repo = where / "repo"
    shutil.copytree(template, repo, symlinks=True)
    pdir = repo / "parallel" / "TS-BENCH"
    argv = cpo_argv("run", str(pdir), *ARGS)
    first = subprocess.run(argv, cwd=repo, env={**env, KILL_AFTER: str(step)}, capture_output=True)
    if first.returncode != -signal.SIGKILL:
        shutil.rmtree(where)
        return None
    deadline = time.monotonic() + 30
    while busy(where) and time.monotonic() < deadline:
        time.sleep(0.05)
    resumed = subprocess.run(
        cpo_argv("run", str(pdir), "--resume", *ARGS), cwd=repo, env=env, capture_output=True
    )
    if resumed.returncode:
        found = [f"resume exit {resumed.returncode}: {failed_tasks(pdir)}"]
    else:
        found = problems(repo, pdir, tasks, env)
    shutil.rmtree(where)
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", type=int, default=4, help="tasks, spread over the waves")
    ap.add_argument("--waves", type=int, default=2)
    ap.add_argument("--first", type=int, default=1, help="first git step to kill after")
    ap.add_argument("--quick", action="store_true", help="the first steps only: proves it works")
    a = ap.parse_args()
    tasks = task_ids(a.tasks)
    per_wave = -(-len(tasks) // a.waves)
    deps = {t: tasks[: (i // per_wave) * per_wave][-1:] for i, t in enumerate(tasks)}
    print(f"recovery: {machine()}", flush=True)
    with scratch("recovery") as tmp:
        env = bench_env(tmp / "home")
        template = make_template(tmp / "template", 20, env)
        write_spec(template, deps, env=env)
        step, failed, runs, killed = a.first - 1, [], 0, 0
        with round_load("every step"):
            while not (a.quick and step >= a.first + 2):
                step += 1
                found = one_step(tmp, template, step, tasks, env)
                if found is None:
                    break
                runs, killed = runs + 2, killed + 1
                if found:
                    failed.append(step)
                    print(f"  kill after git call {step}: {'; '.join(found)}", flush=True)
    rows = [[str(len(tasks)), str(a.waves), str(runs), str(killed), str(len(failed))]]
    print(table(["tasks", "waves", "runs (killed + resumed)", "git steps killed", "failed"], rows))
    print(load_note())


if __name__ == "__main__":
    main()
