"""Peer: the overhead and makespan workloads run by cpo and by parallel-orchestra.

    .venv/bin/python bench/bench_peer.py [--rounds 3] [-n 50] [--files 2000] [-j 8]
                                         [--quick] [--write-readme]

parallel-orchestra (PyPI) is installed with pip into a throwaway virtual environment
inside the benchmark's scratch folder (nothing of it is vendored). It runs
`claude --dangerously-skip-permissions --agent NAME -p PROMPT` per task in a worktree of
its own, auto-commits, and merges every branch into the checked-out branch at the end. Its
`claude` here is a two-line shell script that runs the very agent command cpo runs
(CPO_TASK_ID comes from the task's `env` in its manifest). The marker file is excluded from
commits in its repository as cpo excludes it. Contenders alternate every round; the
figure printed is parallel-orchestra time / cpo time (above 1: cpo is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path

from _common import (
    MARKER,
    TRIVIAL_AGENT,
    bench_env,
    clone,
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
    write_spec,
)
from bench_makespan import Dag, random_dag, sleeping_agent, write_durations

FAKE_CLAUDE = (
    "#!/bin/sh\n# stands in for claude: run the benchmark agent, ignore the flags\n"
    'exec sh -c "$PO_BENCH_AGENT" </dev/null\n'
)


def install_po(where: Path) -> tuple[Path | None, str]:
    """(the parallel-orchestra executable, its version) or (None, why it is unavailable)."""
    venv = where / "po-venv"
    try:
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True, capture_output=True)
        pip = subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "parallel-orchestra"],
            capture_output=True,
            text=True,
            check=False,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        return None, f"could not create a virtual environment: {exc}"
    if pip.returncode != 0:
        return None, f"pip install parallel-orchestra failed: {pip.stderr.strip()[-300:]}"
    exe = venv / "bin" / "parallel-orchestra"
    ver = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=False)
    return exe, (ver.stdout.strip() or ver.stderr.strip())


def po_manifest(path: Path, repo: Path, deps: dict[str, list[str]]) -> Path:
    tasks = []
    for tid, ds in deps.items():
        task: dict[str, object] = {
            "id": tid,
            "agent": "bench",
            "read_only": False,
            "prompt": f"Do {tid}.",
            "env": {"CPO_TASK_ID": tid},
            "max_retries": 0,
        }
        if ds:
            task["depends_on"] = ds
        tasks.append(task)
    # YAML is a superset of JSON: the front matter is written as JSON, no YAML library needed.
    front = {
        "po_plan_version": "0.1",
        "name": "bench",
        "cwd": os.path.relpath(repo, path.parent),
        "tasks": tasks,
    }
    path.write_text(f"---\n{json.dumps(front, indent=1)}\n---\n\n# bench plan\n")
    return path


def run_po(
    po: Path,
    base: Path,
    template: Path,
    deps: dict[str, list[str]],
    agent: str,
    j: int,
    env: dict[str, str],
) -> float:
    base.mkdir(parents=True, exist_ok=True)
    repo = clone(template, base / "repo", env)
    write_spec(repo, deps, env=env)  # the same repository content as cpo's
    exclude = Path(sh(["git", "rev-parse", "--git-common-dir"], repo, env))
    with (repo / exclude / "info" / "exclude").open("a") as fh:
        fh.write(f"/{MARKER}\n/.po-worktrees/\n/.claude/\n")
    bindir = base / "bin"
    bindir.mkdir()
    (bindir / "claude").write_text(FAKE_CLAUDE)
    (bindir / "claude").chmod(0o755)
    plan = po_manifest(base / "plan.md", repo, deps)
    m = measure(
        [
            str(po),
            "run",
            str(plan),
            "--max-workers",
            str(j),
            "--no-dashboard",
            "--quiet",
            "--claude-exe",
            str(bindir / "claude"),
        ],
        repo,
        {**env, "PO_BENCH_AGENT": agent},
    )
    if m.returncode != 0:
        # A failed run is a result too (it is reported, with its reason, not timed).
        lines = [ln for ln in (m.stderr + m.stdout).splitlines() if "Error" in ln]
        why = (lines[0] if lines else f"exit {m.returncode}")[:300]
        raise PeerFailed(f"exit {m.returncode}: {why}")
    files = sh(["git", "ls-tree", "-r", "--name-only", "HEAD"], repo, env).splitlines()
    got = sum(f.startswith("out-task-") for f in files)
    if got != len(deps):
        raise PeerFailed(f"merged {got} of {len(deps)} tasks")
    return m.seconds


class PeerFailed(Exception):
    pass


def run_cpo_on(
    base: Path,
    template: Path,
    deps: dict[str, list[str]],
    agent: str,
    j: int,
    env: dict[str, str],
    mode: str,
) -> float:
    base.mkdir(parents=True, exist_ok=True)
    repo = clone(template, base / "repo", env)
    pdir = write_spec(repo, deps, env=env)
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
    ap.add_argument("-n", "--tasks", type=int, default=50, help="tasks of the overhead workload")
    ap.add_argument("--files", type=int, default=2000, help="files of the overhead repository")
    ap.add_argument("-j", "--concurrency", type=int, default=8, help="for the overhead workload")
    ap.add_argument("--dag-concurrency", type=int, default=4)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="smallest run: proves the script works")
    ap.add_argument("--write-readme", action="store_true", help="update bench/README.md")
    a = ap.parse_args()
    rounds, n, files, lo, hi, dag_n = a.rounds, a.tasks, a.files, 1.0, 4.0, None
    if a.quick:
        rounds, n, files, lo, hi, dag_n = 1, 3, 20, 0.05, 0.1, 4
    print(f"peer: {machine()}", flush=True)
    with scratch("peer") as tmp:
        env = bench_env(tmp / "home")
        po, version = install_po(tmp)
        if po is None:
            print(f"  parallel-orchestra unavailable: {version}")
            if a.write_readme and not a.quick:
                update_readme("peer", f"{machine()}\n\nnot measured: {version}")
            return
        print(f"  {version}", flush=True)
        big = make_template(tmp / "big", files, env)
        small = make_template(tmp / "small", 20, env)
        ratios: dict[str, list[float]] = {"overhead": [], "makespan": []}
        times: dict[str, list[float]] = {"cpo-o": [], "po-o": [], "cpo-m": [], "po-m": []}
        failures: dict[str, list[str]] = {"po-o": [], "po-m": []}
        for r in range(rounds):
            with round_load(f"round {r + 1}"):
                flat = {t: [] for t in task_ids(n)}
                dag: Dag = random_dag(a.seed + r, lo, hi, dag_n)
                agent_m = sleeping_agent(write_durations(dag, tmp / f"durations-{r}"))
                order = [0, 1] if r % 2 == 0 else [1, 0]
                got: dict[str, float] = {}
                for who in order:
                    base = tmp / f"r{r}-{who}"
                    if who == 0:
                        got["cpo-o"] = run_cpo_on(
                            base / "o", big, flat, TRIVIAL_AGENT, a.concurrency, env, "waves"
                        )
                        got["cpo-m"] = run_cpo_on(
                            base / "m", small, dag.deps, agent_m, a.dag_concurrency, env, "dag"
                        )
                    else:
                        for key, args in (
                            ("po-o", (base / "o", big, flat, TRIVIAL_AGENT, a.concurrency)),
                            ("po-m", (base / "m", small, dag.deps, agent_m, a.dag_concurrency)),
                        ):
                            try:
                                got[key] = run_po(po, *args, env)  # type: ignore[arg-type]
                            except PeerFailed as exc:
                                failures[key].append(str(exc))
                    sh(["rm", "-rf", str(base)], tmp, env)
                for k, v in got.items():
                    times[k].append(v)
                for kind, k in (("overhead", "o"), ("makespan", "m")):
                    if f"po-{k}" in got:
                        ratios[kind].append(got[f"po-{k}"] / got[f"cpo-{k}"])
                po_o = f"{got['po-o']:.1f} s" if "po-o" in got else "FAILED"
                po_m = f"{got['po-m']:.1f} s" if "po-m" in got else "FAILED"
                print(
                    f"  round {r + 1}: overhead N={n}: cpo {got['cpo-o']:.1f} s, "
                    f"parallel-orchestra {po_o}; makespan ({len(dag.deps)} tasks, "
                    f"bound {dag.bound(a.dag_concurrency):.1f} s): cpo dag {got['cpo-m']:.1f} s, "
                    f"parallel-orchestra {po_m}",
                    flush=True,
                )
    rows = []
    for kind, k, label in (
        ("overhead", "o", f"overhead, {n} trivial tasks, {files} files, -j {a.concurrency}"),
        ("makespan", "m", f"makespan, random DAG, -j {a.dag_concurrency} (cpo --schedule dag)"),
    ):
        fails = failures[f"po-{k}"]
        po_t = f"{median(times[f'po-{k}']):.1f}" if times[f"po-{k}"] else "—"
        ratio = fmt_ratio(ratios[kind]) if ratios[kind] else "n/a"
        if fails:
            ratio += f"; parallel-orchestra failed {len(fails)} of {rounds} rounds ({fails[0]})"
        rows.append([label, f"{median(times[f'cpo-{k}']):.1f}", po_t, ratio])
    text = table(["workload", "cpo s", "parallel-orchestra s", "parallel-orchestra / cpo"], rows)
    print(text)
    print(load_note())
    if a.write_readme and not a.quick:
        update_readme("peer", f"{machine()}; {version}\n\n{text}")


if __name__ == "__main__":
    main()
