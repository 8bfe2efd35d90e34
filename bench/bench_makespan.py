"""Makespan: a random DAG of 30–60 sleeping agents, against the lower bound.

    .venv/bin/python bench/bench_makespan.py [--rounds 3] [-j 4] [--seed 7]
                                             [--min 1.0 --max 4.0] [--quick] [--write-readme]
    .venv/bin/python bench/bench_makespan.py --latency [--versus REF] [--rounds 5] [--quick]

Each task's agent sleeps a known duration, then writes a file, commits and writes the
marker (its own git work is not counted in the bound: the figure is conservative). The
repository is small (20 files): the git cost of a large one is the overhead benchmark's
subject; this one measures scheduling. The bound no schedule can beat is
max(critical path, total work / concurrency); with `--schedule waves` the wave barrier
adds its own bound: the sum over waves of max(longest task of the wave, the wave's work /
concurrency). cpo's makespan is the wall time of the whole `cpo run` process (start-up,
integration branch and merges included).

Each schedule runs twice: with every task's sleep written as its `estimate` (cpo then
ranks launches by estimated chain length, see cpo/priority.py) and with no estimates
(chains counted in tasks). Contenders rotate every round; each round uses a new random
DAG (seed + round).

With `--latency`: how soon cpo starts an agent, on a 20-task DAG of short agents (sleep
0.2–0.5 s, then commit). Each agent appends `start <id> <time>` first and `end <id>
<time>` last (`date +%s.%N`) to a log outside the repository. A dependent's start latency
is its agent's start minus the latest end of its dependencies' agents (counted only when
an agent slot was free at that end: `-j` defaults to the number of tasks); the first
agent's start is taken from the launch (the clock read just before cpo's process starts).
With `--versus REF` the cpo of git revision REF (checked out aside) runs the same DAG in
each round, the order alternating.
"""

from __future__ import annotations

import argparse
import heapq
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from _common import (
    MARKER,
    ROOT,
    bench_env,
    clone,
    cpo_argv_of,
    fmt_ratio,
    load_note,
    machine,
    make_template,
    measure,
    median,
    round_load,
    run_cpo,
    scratch,
    sh,
    table,
    task_ids,
    update_readme,
    wave_numbers,
    write_spec,
)


@dataclass(frozen=True)
class Dag:
    deps: dict[str, list[str]]
    durations: dict[str, float]

    @property
    def work(self) -> float:
        return sum(self.durations.values())

    def critical_path(self) -> float:
        finish: dict[str, float] = {}
        for t, ds in self.deps.items():  # topological order
            finish[t] = max((finish[d] for d in ds), default=0.0) + self.durations[t]
        return max(finish.values())

    def bound(self, j: int) -> float:
        return max(self.critical_path(), self.work / j)

    def wave_bound(self, j: int) -> float:
        waves = wave_numbers(self.deps)
        total = 0.0
        for n in sorted(set(waves.values())):
            ds = [self.durations[t] for t in self.deps if waves[t] == n]
            total += max(max(ds), sum(ds) / j)
        return total


def ideal_schedule(dag: Dag, j: int, estimates: bool) -> float:
    """The makespan of cpo's launch rule with no overhead at all, simulated.

    Ready tasks start by the longest chain they head (then manifest order), as
    `cpo.run.priority` ranks them for `--schedule dag`: chains weighted by the tasks'
    estimates when given, else counted in tasks. This tells how much of cpo's ratio is
    the rule itself (the bound assumes a scheduler that knows the future).
    """
    ids = list(dag.deps)
    dependents: dict[str, list[str]] = {t: [] for t in ids}
    for t, ds in dag.deps.items():
        for d in ds:
            dependents[d].append(t)
    level: dict[str, float] = {}
    for t in reversed(ids):
        weight = dag.durations[t] if estimates else 1.0
        level[t] = weight + max((level[d] for d in dependents[t]), default=0.0)
    priority = {t: (-level[t], i) for i, t in enumerate(ids)}
    done: set[str] = set()
    started: set[str] = set()
    running: list[tuple[float, str]] = []
    now = 0.0
    while len(done) < len(ids):
        ready = sorted(
            (t for t in ids if t not in started and set(dag.deps[t]) <= done),
            key=priority.__getitem__,
        )
        for t in ready[: j - len(running)]:
            started.add(t)
            heapq.heappush(running, (now + dag.durations[t], t))
        now, t = heapq.heappop(running)
        done.add(t)
    return now


def random_dag(seed: int, lo: float, hi: float, n: int | None = None) -> Dag:
    """30–60 tasks; each depends on 0–2 earlier tasks chosen uniformly."""
    rng = random.Random(seed)
    ids = task_ids(n or rng.randint(30, 60))
    deps: dict[str, list[str]] = {}
    for i, t in enumerate(ids):
        k = min(i, rng.choice([0, 1, 1, 2]))
        deps[t] = sorted(rng.sample(ids[:i], k))
    durations = {t: round(rng.uniform(lo, hi), 2) for t in ids}
    return Dag(deps, durations)


def sleeping_agent(durations_file: Path) -> str:
    """Sleep the task's duration (looked up by CPO_TASK_ID), then commit and mark done."""
    return (
        f"sleep $(awk -v t=\"$CPO_TASK_ID\" '$1==t{{print $2}}' {durations_file}) && "
        'printf "%s\\n" "$CPO_TASK_ID" > "out-$CPO_TASK_ID.txt" && '
        'git add "out-$CPO_TASK_ID.txt" && git commit -q -m "$CPO_TASK_ID" && '
        f": > {MARKER}"
    )


def write_durations(dag: Dag, path: Path) -> Path:
    path.write_text("".join(f"{t} {d}\n" for t, d in dag.durations.items()))
    return path


def run_cpo_dag(
    base: Path,
    template: Path,
    dag: Dag,
    j: int,
    mode: str,
    estimates: bool,
    env: dict[str, str],
) -> float:
    base.mkdir(parents=True, exist_ok=True)
    repo = clone(template, base / "repo", env)
    pdir = write_spec(repo, dag.deps, env=env, estimates=dag.durations if estimates else None)
    agent = sleeping_agent(write_durations(dag, base / "durations"))
    m = run_cpo(
        repo,
        pdir,
        env,
        "--backend",
        "command",
        "--agent-command",
        agent,
        "-j",
        str(j),
        "--schedule",
        mode,
    )
    return m.seconds


# -- --latency: how soon an agent starts ----------------------------------------------------------
def logged_agent(durations_file: Path, log: Path) -> str:
    """`sleeping_agent`, its first and last acts appending its start and end to `log`."""
    note = f'echo "{{}} $CPO_TASK_ID $(date +%s.%N)" >> {log}'
    return f"{note.format('start')} && {sleeping_agent(durations_file)} && {note.format('end')}"


@dataclass(frozen=True)
class Latency:
    first: float  # first agent's start after launch, s
    dependents: list[float]  # start latency of each dependent that had a free slot, s
    slot_bound: int  # dependents left out: every slot was busy when their last dependency ended
    seconds: float  # the whole run


def latencies(dag: Dag, log: Path, launched: float, j: int, seconds: float) -> Latency:
    start: dict[str, float] = {}
    end: dict[str, float] = {}
    for line in log.read_text().splitlines():
        what, tid, at = line.split()
        (start if what == "start" else end)[tid] = float(at)
    if set(start) != set(dag.deps) or set(end) != set(dag.deps):
        raise RuntimeError(f"{log}: not every agent started and ended once")
    dependents: list[float] = []
    slot_bound = 0
    for t, ds in dag.deps.items():
        if not ds:
            continue
        ready = max(end[d] for d in ds)
        busy = sum(1 for u in dag.deps if u != t and start[u] <= ready < end[u])
        if busy >= j:
            slot_bound += 1
            continue
        dependents.append(start[t] - ready)
    return Latency(min(start.values()) - launched, dependents, slot_bound, seconds)


def run_latency(
    src: Path, base: Path, template: Path, dag: Dag, j: int, env: dict[str, str]
) -> Latency:
    base.mkdir(parents=True)
    repo = clone(template, base / "repo", env)
    pdir = write_spec(repo, dag.deps, env=env)
    log = base / "agents.log"
    agent = logged_agent(write_durations(dag, base / "durations"), log)
    argv = cpo_argv_of(src, "run", str(pdir), "--quiet")
    argv += ["--backend", "command", "--agent-command", agent, "-j", str(j), "--schedule", "dag"]
    launched = time.time()  # measure() starts the process right after its two temp files
    m = measure(argv, repo, env)
    if m.returncode != 0:
        raise RuntimeError(f"cpo run failed (exit {m.returncode}):\n{m.stderr[-2000:]}")
    return latencies(dag, log, launched, j, m.seconds)


def latency(a: argparse.Namespace) -> None:
    rounds, n, lo, hi = (1, 4, 0.05, 0.1) if a.quick else (a.rounds, a.tasks, 0.2, 0.5)
    j = a.concurrency or n
    print(f"latency: {machine()}\n  {n} tasks, -j {j}, sleeps {lo}–{hi} s, {rounds} rounds")
    with scratch("latency") as tmp:
        env = bench_env(tmp / "home")
        template = make_template(tmp / "template", a.files, env)
        trees = {"this tree": ROOT}
        if a.versus:
            trees[a.versus] = tmp / "old"
            sh(["git", "worktree", "add", "-q", "--detach", str(tmp / "old"), a.versus], ROOT, env)
        got: dict[str, list[Latency]] = {who: [] for who in trees}
        try:
            for r in range(rounds):
                dag = random_dag(a.seed + r, lo, hi, n)
                order = list(trees) if r % 2 == 0 else list(reversed(trees))
                for who in order:
                    base = tmp / f"r{r}-{order.index(who)}"
                    with round_load(f"round {r + 1} {who}"):
                        got[who].append(run_latency(trees[who], base, template, dag, j, env))
                    x = got[who][-1]
                    print(
                        f"  round {r + 1} {who}: first agent {x.first * 1000:.0f} ms after "
                        f"launch; dependents {ms_of(x.dependents)} ({len(x.dependents)} "
                        f"counted, {x.slot_bound} waited for a slot); run {x.seconds:.2f} s",
                        flush=True,
                    )
                    shutil.rmtree(base, ignore_errors=True)
        finally:
            if a.versus:
                sh(["git", "worktree", "remove", "--force", str(tmp / "old")], ROOT, env)
    text = latency_table(got)
    print(text)
    print(load_note())
    if a.write_readme and not a.quick:
        head = f"{machine()}; {n} tasks, -j {j}, sleeps {lo}–{hi} s, {rounds} rounds"
        update_readme("latency", f"{head}\n\n{text}")


def ms_of(xs: list[float]) -> str:
    """Median and max of latencies in seconds, in ms."""
    if not xs:
        return "none"
    return f"median {median(xs) * 1000:.1f} ms, max {max(xs) * 1000:.1f} ms"


def latency_table(got: dict[str, list[Latency]]) -> str:
    def ms(xs: list[float]) -> str:
        if not xs:
            return "-"
        return f"{median(xs) * 1000:.1f} (spread {min(xs) * 1000:.1f}–{max(xs) * 1000:.1f})"

    rows = [
        ["dependent start latency, ms: median of the rounds' medians"],
        ["dependent start latency, ms: max of all rounds"],
        ["first agent after launch, ms"],
        ["dependents counted (left out: waited for a slot)"],
    ]
    for runs in got.values():
        every = [d for x in runs for d in x.dependents]
        rows[0].append(ms([median(x.dependents) for x in runs if x.dependents]))
        rows[1].append(f"{max(every) * 1000:.1f}" if every else "-")
        rows[2].append(ms([x.first for x in runs]))
        rows[3].append(f"{len(every)} ({sum(x.slot_bound for x in runs)})")
    return table(["figure", *got], rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("-j", "--concurrency", type=int, help="4; with --latency: the tasks")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--min", type=float, default=1.0, help="shortest agent sleep, s")
    ap.add_argument("--max", type=float, default=4.0, help="longest agent sleep, s")
    ap.add_argument("--files", type=int, default=20, help="files in the repository")
    ap.add_argument("--quick", action="store_true", help="smallest run: proves the script works")
    ap.add_argument("--write-readme", action="store_true", help="update bench/README.md")
    ap.add_argument("--latency", action="store_true", help="agent start latency, see above")
    ap.add_argument("--tasks", type=int, default=20, help="with --latency: tasks in the DAG")
    ap.add_argument("--versus", metavar="REF", help="with --latency: also the cpo of REF")
    a = ap.parse_args()
    if a.latency:
        latency(a)
        return
    a.concurrency = a.concurrency or 4
    rounds, lo, hi, n = a.rounds, a.min, a.max, None
    if a.quick:
        rounds, lo, hi, n = 1, 0.05, 0.1, 4
    print(
        f"makespan: {machine()}\n  concurrency {a.concurrency}, sleeps {lo}–{hi} s, "
        f"{rounds} rounds",
        flush=True,
    )
    # (schedule, tasks carry their sleep as `estimate`): both schedules with and without
    contenders = [("dag", True), ("dag", False), ("waves", True), ("waves", False)]
    ratio: dict[tuple[str, bool], list[float]] = {c: [] for c in contenders}
    wave_ratio: list[float] = []
    wave_bound_ratio: list[float] = []
    ideal_ratio: dict[bool, list[float]] = {True: [], False: []}
    dag_vs_ideal: list[float] = []
    sizes: list[int] = []
    with scratch("makespan") as tmp:
        env = bench_env(tmp / "home")
        template = make_template(tmp / "template", a.files, env)
        for r in range(rounds):
            with round_load(f"round {r + 1}"):
                dag = random_dag(a.seed + r, lo, hi, n)
                sizes.append(len(dag.deps))
                bound, wbound = dag.bound(a.concurrency), dag.wave_bound(a.concurrency)
                shift = r % len(contenders)  # a different contender goes first every round
                got: dict[tuple[str, bool], float] = {}
                for mode, est in contenders[shift:] + contenders[:shift]:
                    where = tmp / f"r{r}-{mode}-{'est' if est else 'none'}"
                    got[mode, est] = run_cpo_dag(
                        where, template, dag, a.concurrency, mode, est, env
                    )
                    ratio[mode, est].append(got[mode, est] / bound)
                wave_ratio.append(got["waves", True] / wbound)
                wave_bound_ratio.append(wbound / bound)
                ideal = {est: ideal_schedule(dag, a.concurrency, est) for est in (True, False)}
                for est, makespan in ideal.items():
                    ideal_ratio[est].append(makespan / bound)
                dag_vs_ideal.append(got["dag", True] / ideal[True])
                print(
                    f"  round {r + 1}: {len(dag.deps)} tasks, critical path "
                    f"{dag.critical_path():.1f} s, work/j {dag.work / a.concurrency:.1f} s, "
                    f"bound {bound:.1f} s, wave bound {wbound:.1f} s; "
                    + ", ".join(
                        f"{m}{'+est' if e else ''} {got[m, e]:.1f} s ({got[m, e] / bound:.3f})"
                        for m, e in contenders
                    ),
                    flush=True,
                )
    rows = [
        ["`--schedule dag`, tasks with `estimate` / bound", fmt_ratio(ratio["dag", True])],
        ["`--schedule dag`, no estimates / bound", fmt_ratio(ratio["dag", False])],
        ["`--schedule waves`, tasks with `estimate` / bound", fmt_ratio(ratio["waves", True])],
        ["`--schedule waves`, no estimates / bound", fmt_ratio(ratio["waves", False])],
        ["wave-barrier bound / bound", fmt_ratio(wave_bound_ratio)],
        ["`--schedule waves` with estimates / wave-barrier bound", fmt_ratio(wave_ratio)],
        [
            "dag launch rule, zero overhead (simulated), estimates / bound",
            fmt_ratio(ideal_ratio[True]),
        ],
        [
            "dag launch rule, zero overhead (simulated), no estimates / bound",
            fmt_ratio(ideal_ratio[False]),
        ],
        [
            "`--schedule dag` with estimates / its simulation (cpo's own overhead)",
            fmt_ratio(dag_vs_ideal),
        ],
    ]
    text = table(["makespan ratio", "median"], rows)
    print(text)
    print(load_note())
    print(
        f"  dag median {median(ratio['dag', True]):.3f} (no estimates "
        f"{median(ratio['dag', False]):.3f}), waves median {median(ratio['waves', True]):.3f}"
    )
    if a.write_readme and not a.quick:
        update_readme(
            "makespan",
            f"{machine()}; concurrency {a.concurrency}, tasks {sizes}, sleeps {lo}–{hi} s\n\n"
            + text,
        )


if __name__ == "__main__":
    main()
