"""Scale: validating big plans, many agents at once, cpo's own memory, start-up time.

    .venv/bin/python bench/bench_scale.py [--rounds 3] [--quick] [--write-readme]

- `cpo validate` of plans of 1,000 and 5,000 tasks (10 waves, each task depending on one
  of the previous wave, each with a CREATE scope), median wall time of the process;
- `cpo run` of 200 trivial tasks at concurrency 32: completes? wall time, and the peak
  resident memory (VmHWM) of the cpo process itself; agents are separate processes;
- one agent printing 100 MB (in 1,000-character lines, and as one line without a
  newline) against one trivial agent: cpo's peak memory must not grow with the output;
- cold start of `cpo --help` and `cpo status <dir>` (median of several runs).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from _common import (
    MARKER,
    PY,
    TRIVIAL_AGENT,
    bench_env,
    clone,
    cpo_argv,
    load_report,
    machine,
    make_template,
    measure,
    median,
    run_cpo,
    scratch,
    spread,
    table,
    task_ids,
    update_readme,
    write_spec,
)

BIG_LINES = f"head -c {{size}} /dev/zero | tr '\\0' x | fold -w 1000 && : > {MARKER}"
BIG_ONE_LINE = f"head -c {{size}} /dev/zero | tr '\\0' x && : > {MARKER}"


def big_plan(root: Path, n: int, waves: int = 10) -> Path:
    """A valid cpo-style plan of n tasks; no git needed to validate it."""
    (root / "tasks").mkdir(parents=True)
    ids = task_ids(n)
    per = max(1, n // waves)
    manifest: dict[str, object] = {"tech_spec_id": "TS-SCALE", "name": "scale", "waves": []}
    wave_list: list[dict[str, object]] = []
    for i, tid in enumerate(ids):
        w = min(waves, i // per + 1)
        dep = ids[i - per] if w > 1 else None
        if len(wave_list) < w:
            wave_list.append({"number": w, "tasks": []})
        wave_list[w - 1]["tasks"].append({"id": tid})  # type: ignore[attr-defined]
        (root / "tasks" / f"{tid}.md").write_text(
            f"---\nid: {tid}\nwave: {w}\ndeps: [{dep or ''}]\n---\n# {tid}\n\n"
            f"## Scope\nCREATE: src/{tid}.py\nMODIFY: src/registry.py::{tid.replace('-', '_')}\n\n"
            f"## Requirements\nImplement {tid}.\n"
        )
    manifest["waves"] = wave_list
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return root


def time_validate(tmp: Path, n: int, rounds: int, env: dict[str, str]) -> list[float]:
    root = big_plan(tmp / f"plan-{n}", n)
    times = []
    for _ in range(rounds):
        m = measure(cpo_argv("validate", str(root)), tmp, env)
        if m.returncode != 0:
            raise RuntimeError(f"validate {n} failed:\n{m.stdout[-1500:]}{m.stderr[-1500:]}")
        times.append(m.seconds)
    shutil.rmtree(root)
    return times


def run_many(tmp: Path, template: Path, n: int, j: int, env: dict[str, str]) -> tuple[float, int]:
    repo = clone(template, tmp / f"many-{n}" / "repo", env)
    pdir = write_spec(repo, {t: [] for t in task_ids(n)}, env=env)
    m = run_cpo(
        repo, pdir, env, "--backend", "command", "--agent-command", TRIVIAL_AGENT,
        "-j", str(j), peak=True,
    )
    tasks = load_report(pdir)["tasks"].values()
    done = sum(t["status"] == "completed" and t["merged"] for t in tasks)
    assert done == n, f"{done} of {n} tasks completed and merged"
    assert m.peak_kb is not None
    return m.seconds, m.peak_kb


def run_one(
    tmp: Path, template: Path, name: str, agent: str, env: dict[str, str]
) -> tuple[float, int]:
    repo = clone(template, tmp / f"one-{name}" / "repo", env)
    pdir = write_spec(repo, {"task-0001": []}, env=env)
    m = run_cpo(repo, pdir, env, "--backend", "command", "--agent-command", agent, peak=True)
    assert m.peak_kb is not None
    shutil.rmtree(tmp / f"one-{name}")
    return m.seconds, m.peak_kb


def cold_start(argv: list[str], cwd: Path, env: dict[str, str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        m = measure(argv, cwd, env)
        if m.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {m.stderr[-500:]}")
        times.append(m.seconds)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="smallest run: proves the script works")
    ap.add_argument("--write-readme", action="store_true", help="update bench/README.md")
    a = ap.parse_args()
    sizes, many, j, big, rounds, starts = [1000, 5000], 200, 32, 100_000_000, a.rounds, 10
    if a.quick:
        sizes, many, j, big, rounds, starts = [50], 4, 2, 1_000_000, 1, 2
    print(f"scale: {machine()}", flush=True)
    rows: list[list[str]] = []
    with scratch("scale") as tmp:
        env = bench_env(tmp / "home")
        for n in sizes:
            ts = time_validate(tmp, n, rounds, env)
            rows.append([f"validate {n} tasks", f"{median(ts):.2f} s", f"spread {spread(ts)} s"])
            print("  " + " · ".join(rows[-1]), flush=True)
        template = make_template(tmp / "template", 200, env)
        secs, peak = run_many(tmp, template, many, j, env)
        rows.append([f"run {many} tasks at concurrency {j}", f"{secs:.1f} s, all merged",
                     f"cpo peak memory {peak / 1024:.1f} MB"])
        print("  " + " · ".join(rows[-1]), flush=True)
        status_dir = tmp / f"many-{many}" / "repo" / "parallel" / "TS-BENCH"
        base_s, base_kb = run_one(tmp, template, "trivial", TRIVIAL_AGENT, env)
        for name, cmd in (("lines", BIG_LINES), ("one line", BIG_ONE_LINE)):
            s, kb = run_one(tmp, template, name.replace(" ", "-"), cmd.format(size=big), env)
            rows.append([
                f"one agent printing {big / 1e6:g} MB ({name})",
                f"{s:.1f} s (trivial agent {base_s:.1f} s)",
                f"cpo peak {kb / 1024:.1f} MB vs {base_kb / 1024:.1f} MB with a trivial agent "
                f"(+{(kb - base_kb) / 1024:.1f} MB)",
            ])
            print("  " + " · ".join(rows[-1]), flush=True)
        cpo_exe = str(Path(PY).parent / "cpo")
        helps = cold_start([cpo_exe, "--help"], tmp, env, starts)
        rows.append(["cold start `cpo --help`", f"{median(helps):.3f} s",
                     f"spread {spread(helps)} s"])
        bare = cold_start([PY, "-c", "pass"], tmp, env, starts)
        rows.append(["for scale: `python -c pass`", f"{median(bare):.3f} s",
                     f"spread {spread(bare)} s"])
        has_status = measure([cpo_exe, "status", "--help"], tmp, env).returncode == 0
        if has_status:
            st = cold_start([cpo_exe, "status", str(status_dir)], tmp, env, starts)
            rows.append([f"cold start `cpo status` ({many} tasks)", f"{median(st):.3f} s",
                         f"spread {spread(st)} s"])
        else:
            rows.append(["cold start `cpo status`", "n/a", "this cpo has no `status` command yet"])
        for r in rows[-3:]:
            print("  " + " · ".join(r), flush=True)
    text = table(["measure", "figure", "detail"], rows)
    print(text)
    if a.write_readme and not a.quick:
        update_readme("scale", f"{machine()}\n\n{text}")


if __name__ == "__main__":
    main()
