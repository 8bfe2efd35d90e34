"""Overhead: cpo against a bare shell doing the same git work, N trivial tasks in one wave.

    .venv/bin/python bench/bench_overhead.py [--sizes 10,50,200] [--rounds 3] [-j 8]
                                             [--files 3000] [--quick] [--write-readme]

Per round and size, each contender gets a fresh clone of the same repository (a few
thousand files) and runs N tasks at the same concurrency: a worktree and branch per task,
the same agent command (write a file, commit, write the marker), every branch merged into
an integration branch. cpo: `cpo run --backend command`. Baseline: bench/baseline.sh
(`xargs -P`). The order alternates every round. Prints cpo time / baseline time.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import (
    BENCH,
    TRIVIAL_AGENT,
    bench_env,
    clone,
    fmt_ratio,
    load_note,
    machine,
    make_template,
    measure,
    median,
    paired_rounds,
    run_cpo,
    scratch,
    sh,
    table,
    task_ids,
    update_readme,
    write_spec,
)


def run_cpo_round(base: Path, template: Path, n: int, j: int, env: dict[str, str]) -> float:
    repo = clone(template, base / "cpo" / "repo", env)
    pdir = write_spec(repo, {t: [] for t in task_ids(n)}, env=env)
    m = run_cpo(
        repo, pdir, env, "--backend", "command", "--agent-command", TRIVIAL_AGENT, "-j", str(j)
    )
    merges = sh(["git", "rev-list", "--count", "--merges", "integration/TS-BENCH"], repo, env)
    assert int(merges) == n, f"cpo merged {merges} of {n}"
    return m.seconds


def run_baseline_round(base: Path, template: Path, n: int, j: int, env: dict[str, str]) -> float:
    repo = clone(template, base / "sh" / "repo", env)
    write_spec(repo, {t: [] for t in task_ids(n)}, env=env)  # the same repository content
    ids = base / "sh" / "ids"
    ids.write_text("\n".join(task_ids(n)) + "\n")
    m = measure(
        [
            "bash",
            str(BENCH / "baseline.sh"),
            str(repo),
            str(base / "sh" / "workspaces"),
            str(j),
            TRIVIAL_AGENT,
            str(ids),
        ],
        repo,
        env,
    )
    if m.returncode != 0:
        raise RuntimeError(f"baseline failed: {m.stderr[-2000:]}")
    merges = sh(["git", "rev-list", "--count", "--merges", "integration/baseline"], repo, env)
    assert int(merges) == n, f"baseline merged {merges} of {n}"
    return m.seconds


def measure_overhead(
    sizes: list[int], rounds: int, j: int, files: int
) -> list[tuple[int, list[float], list[float], list[float]]]:
    results = []
    with scratch("overhead") as tmp:
        env = bench_env(tmp / "home")
        template = make_template(tmp / "template", files, env)
        for n in sizes:

            def contender(who: str, base: Path, n: int = n) -> float:
                fn = run_cpo_round if who == "cpo" else run_baseline_round
                return fn(base, template, n, j, env)

            # N >= 200 takes minutes per round on a slow disk: a third of the rounds.
            many = rounds if n < 200 else max(1, rounds // 3)
            ratios, cpo_t, sh_t = paired_rounds(tmp, n, many, ("cpo", "baseline"), contender)
            results.append((n, ratios, cpo_t, sh_t))
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10,50,200")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("-j", "--concurrency", type=int, default=8)
    ap.add_argument("--files", type=int, default=2000, help="files in the repository")
    ap.add_argument("--quick", action="store_true", help="smallest run: proves the script works")
    ap.add_argument("--write-readme", action="store_true", help="update bench/README.md")
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    rounds, files = a.rounds, a.files
    if a.quick:
        sizes, rounds, files = [3], 1, 20
    print(
        f"overhead: {machine()}\n  sizes {sizes}, concurrency {a.concurrency}, "
        f"{files} files, {rounds} rounds",
        flush=True,
    )
    results = measure_overhead(sizes, rounds, a.concurrency, files)
    rows = [
        [str(n), f"{median(c):.2f}", f"{median(s):.2f}", fmt_ratio(r)] for n, r, c, s in results
    ]
    text = table(["N tasks", "cpo s (median)", "baseline s (median)", "cpo / baseline"], rows)
    print(text)
    print(load_note())
    if a.write_readme and not a.quick:
        update_readme(
            "overhead",
            f"{machine()}; concurrency {a.concurrency}, {files} files\n\n{text}",
        )


if __name__ == "__main__":
    main()
