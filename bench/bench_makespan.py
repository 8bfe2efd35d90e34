"""Makespan: a random DAG of 30–60 sleeping agents, against the lower bound.

    .venv/bin/python bench/bench_makespan.py [--rounds 3] [-j 4] [--seed 7]
                                             [--min 1.0 --max 4.0] [--quick] [--write-readme]

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
"""

from __future__ import annotations

import argparse
import heapq
import random
from dataclasses import dataclass
from pathlib import Path

from _common import (
    MARKER,
    bench_env,
    clone,
    fmt_ratio,
    load_note,
    machine,
    make_template,
    median,
    round_load,
    run_cpo,
    scratch,
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("-j", "--concurrency", type=int, default=4)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--min", type=float, default=1.0, help="shortest agent sleep, s")
    ap.add_argument("--max", type=float, default=4.0, help="longest agent sleep, s")
    ap.add_argument("--files", type=int, default=20, help="files in the repository")
    ap.add_argument("--quick", action="store_true", help="smallest run: proves the script works")
    ap.add_argument("--write-readme", action="store_true", help="update bench/README.md")
    a = ap.parse_args()
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
