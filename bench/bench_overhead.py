"""Overhead: cpo against a bare shell doing the same git work, N trivial tasks in one wave.

    .venv/bin/python bench/bench_overhead.py [--sizes 10,50,200] [--rounds 3] [-j 8]
                                             [--files 3000] [--quick] [--write-readme]
                                             [--versus REF]

Per round and size, each contender gets a fresh clone of the same repository (a few
thousand files) and runs N tasks at the same concurrency: a worktree and branch per task,
the same agent command (write a file, commit, write the marker), every branch merged into
an integration branch. cpo: `cpo run --backend command`. Baseline: bench/baseline.sh
(`xargs -P`). The order alternates every round. Prints cpo time / baseline time.

With `--versus REF` the cpo of git revision REF (checked out aside) runs too, in the same
rounds (the order rotates): both cpos against the baseline, and this tree's / REF's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import (
    BENCH,
    ROOT,
    TRIVIAL_AGENT,
    bench_env,
    clone,
    cpo_argv_of,
    fmt_ratio,
    load_note,
    machine,
    make_template,
    measure,
    median,
    paired_rounds,
    revision_tree,
    rotating_rounds,
    run_cpo,
    scratch,
    sh,
    table,
    task_ids,
    update_readme,
    write_spec,
)


def run_cpo_round(
    base: Path, template: Path, n: int, j: int, env: dict[str, str], src: Path | None = None
) -> float:
    """cpo's time; the cpo of the source tree `src` when given (else the installed one)."""
    repo = clone(template, base / "cpo" / "repo", env)
    pdir = write_spec(repo, {t: [] for t in task_ids(n)}, env=env)
    args = ("--backend", "command", "--agent-command", TRIVIAL_AGENT, "-j", str(j))
    if src is None:
        m = run_cpo(repo, pdir, env, *args)
    else:
        m = measure(cpo_argv_of(src, "run", str(pdir), "--quiet", *args), repo, env)
        if m.returncode != 0:
            raise RuntimeError(f"cpo of {src} failed (exit {m.returncode}):\n{m.stderr[-2000:]}")
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


def measure_versus(
    ref: str, sizes: list[int], rounds: int, j: int, files: int
) -> list[tuple[int, dict[str, list[float]]]]:
    """Each size's rounds with three contenders: this tree's cpo (run from its source, as
    REF's is), REF's and the baseline."""
    results = []
    with scratch("overhead-versus") as tmp:
        env = bench_env(tmp / "home")
        template = make_template(tmp / "template", files, env)
        with revision_tree(ref, tmp, env) as old:
            trees = {"cpo": ROOT, ref: old}
            for n in sizes:

                def contender(who: str, base: Path, n: int = n) -> float:
                    if who == "baseline":
                        return run_baseline_round(base, template, n, j, env)
                    return run_cpo_round(base, template, n, j, env, trees[who])

                many = rounds if n < 200 else max(1, rounds // 3)
                names = ("cpo", ref, "baseline")
                results.append((n, rotating_rounds(tmp, n, many, names, contender)))
    return results


def versus_table(ref: str, results: list[tuple[int, dict[str, list[float]]]]) -> str:
    rows = []
    for n, t in results:
        mine, old, base = t["cpo"], t[ref], t["baseline"]
        rows.append(
            [
                str(n),
                f"{median(mine):.3f} / {median(old):.3f} / {median(base):.3f}",
                fmt_ratio([a / b for a, b in zip(mine, base, strict=True)]),
                fmt_ratio([a / b for a, b in zip(old, base, strict=True)]),
                fmt_ratio([a / b for a, b in zip(mine, old, strict=True)]),
            ]
        )
    header = ["N tasks", f"s: cpo / {ref} / baseline", "cpo / baseline", f"{ref} / baseline"]
    return table([*header, f"cpo / {ref}"], rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10,50,200")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("-j", "--concurrency", type=int, default=8)
    ap.add_argument("--files", type=int, default=2000, help="files in the repository")
    ap.add_argument("--quick", action="store_true", help="smallest run: proves the script works")
    ap.add_argument("--write-readme", action="store_true", help="update bench/README.md")
    ap.add_argument("--versus", metavar="REF", help="also the cpo of git revision REF")
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
    if a.versus:
        print(versus_table(a.versus, measure_versus(a.versus, sizes, rounds, a.concurrency, files)))
        print(load_note())
        return
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
