"""Ray executor overhead: the same N trivial tasks run locally and as Ray jobs, side by side.

    .venv/bin/python bench/bench_ray.py [--sizes 4,8] [--rounds 3] [-j 2] [--quick]
                                        [--write-readme]

Needs the `ray` extra. One local Ray head for the whole run (the one tests/ray_executor
uses: 2 CPUs, `agent_slot` = -j, on 127.0.0.1), a `file://` bare repository as the remote.
Per round and size each contender gets a fresh clone of the same small repository and runs
N tasks in one wave at the same concurrency with the same agent command (write a file,
commit, write the marker): `cpo run --executor local` and `cpo run --executor ray`, the
order alternating every round. Prints the wall times, ray / local, and the extra seconds
per task that a Ray job costs (job submission, start-up of the worker's Python, the clone
from and push to the remote, the fetch back).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _common import (
    ROOT,
    TRIVIAL_AGENT,
    bench_env,
    clone,
    fmt_ratio,
    load_note,
    machine,
    make_template,
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

# The throwaway local cluster of the ray tests: one definition of how it starts and stops
# (every process it starts carries its tag, and only those are stopped).
sys.path.insert(0, str(ROOT))
from tests.raycluster import ray_head


def one_round(base: Path, template: Path, who: str, n: int, j: int, env: dict[str, str]) -> float:
    repo = clone(template, base / who / "repo", env)
    remote = base / who / "remote.git"
    sh(["git", "init", "-q", "--bare", str(remote)], base, env)
    pdir = write_spec(repo, {t: [] for t in task_ids(n)}, env=env)
    args = ["--backend", "command", "--agent-command", TRIVIAL_AGENT, "-j", str(j)]
    args += ["--executor", who, "--remote", remote.as_uri()]
    m = run_cpo(repo, pdir, env, *args)
    merges = sh(["git", "rev-list", "--count", "--merges", "integration/TS-BENCH"], repo, env)
    assert int(merges) == n, f"{who}: merged {merges} of {n}"
    return m.seconds


def measure_ray(
    sizes: list[int], rounds: int, j: int
) -> list[tuple[int, list[float], list[float], list[float]]]:
    results = []
    with scratch("ray") as tmp, ray_head(agent_slots=j) as head:
        env = head.client_env(bench_env(tmp / "home"))
        template = make_template(tmp / "template", 20, env)
        for n in sizes:

            def contender(who: str, base: Path, n: int = n) -> float:
                return one_round(base, template, who, n, j, env)

            ratios, ray_t, local_t = paired_rounds(tmp, n, rounds, ("ray", "local"), contender)
            results.append((n, ratios, local_t, ray_t))
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="4,8")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("-j", "--concurrency", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="smallest run: proves the script works")
    ap.add_argument("--write-readme", action="store_true", help="update bench/README.md")
    a = ap.parse_args()
    sizes, rounds = [int(s) for s in a.sizes.split(",")], a.rounds
    if a.quick:
        sizes, rounds = [2], 1
    print(f"ray: {machine()}\n  sizes {sizes}, concurrency {a.concurrency}, {rounds} rounds")
    results = measure_ray(sizes, rounds, a.concurrency)
    rows = [
        [
            str(n),
            f"{median(lt):.2f}",
            f"{median(rt):.2f}",
            fmt_ratio(r),
            f"{(median(rt) - median(lt)) * a.concurrency / n:.2f}",
        ]
        for n, r, lt, rt in results
    ]
    header = ["N tasks", "local s (median)", "ray s (median)", "ray / local"]
    text = table([*header, "extra s per task (× -j / N)"], rows)
    print(text)
    print(load_note())
    if a.write_readme and not a.quick:
        update_readme("ray", f"{machine()}; concurrency {a.concurrency}\n\n{text}")


if __name__ == "__main__":
    main()
