"""How long `load_plan` takes on big generated parallel directories.

    python bench/bench_validate.py

Generates 1,000- and 5,000-task directories (cpo-style manifest, task files with
frontmatter, deps and scope, some prompt files) in a temporary folder and prints the
median of several rounds of `load_plan`, then of the whole `cpo validate` process on the
5,000-task directory (the budget: under 2 s). Prints numbers only; nothing here asserts a
time.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import load_note, round_load

from cpo.plan.load import load_plan

TASKS_PER_WAVE = 50
ROUNDS = 5
CLI_ROUNDS = 3
ROOT = Path(__file__).resolve().parent.parent


def generate(root: Path, n: int) -> Path:
    """A valid directory of `n` tasks in waves of 50, each depending on two of the wave before."""
    (root / "tasks").mkdir(parents=True)
    (root / "prompts").mkdir()
    waves: list[dict[str, object]] = []
    for i in range(n):
        wave = i // TASKS_PER_WAVE + 1
        tid = f"task-{i:05d}"
        deps = []
        if wave > 1:
            base = (wave - 2) * TASKS_PER_WAVE
            deps = [f"task-{base + (i % TASKS_PER_WAVE):05d}", f"task-{base:05d}"]
            deps = sorted(set(deps))
        if len(waves) < wave:
            waves.append({"number": wave, "tasks": [], "validation": "python -m pytest -q"})
        entry: dict[str, object] = {"id": tid, "agent": "general-purpose"}
        waves[wave - 1]["tasks"].append(entry)  # type: ignore[attr-defined]
        meta = (
            f"---\nid: {tid}\ncomponent: part{i}\nwave: {wave}\ndeps: [{', '.join(deps)}]\n"
            f"model: sonnet\ntimeout: 3600\n---\n"
        )
        body = (
            f"# {tid}: Part {i}\n\n## Scope\nCREATE: pkg/part{i}.py, tests/test_part{i}.py\n"
            f"MODIFY: pkg/registry.py::register_{i}\nBOUNDARY: pkg/core.py\n\n"
            "## Requirements\n- Implement the part.\n\n## Checklist\n- [ ] tests pass\n"
        )
        (root / "tasks" / f"{tid}-part{i}.md").write_text(meta + body)
        if i % 10 == 0:
            (root / "prompts" / f"{tid}.txt").write_text(f"Implement part {i}.\n" * 20)
    manifest = {
        "tech_spec_id": "TS-9999",
        "name": "bench",
        "waves": waves,
        "metadata": {"max_parallel": 8},
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return root


def main() -> None:
    print(f"python {sys.version.split()[0]}; median of {ROUNDS} rounds (after one warm-up)")
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1000, 5000):
            root = generate(Path(tmp) / f"p{n}", n)
            plan = load_plan(root)  # warm-up; also proves the directory is valid
            assert len(plan.tasks) == n, len(plan.tasks)
            times = []
            for r in range(ROUNDS):
                with round_load(f"{n} tasks, round {r + 1}"):
                    start = time.perf_counter()
                    load_plan(root)
                    times.append(time.perf_counter() - start)
            med = statistics.median(times)
            print(
                f"{n:>5} tasks: median {med * 1000:7.1f} ms  ({med / n * 1e6:6.1f} µs/task, "
                f"{len(plan.waves)} waves)"
            )
        med = statistics.median(validate_process(Path(tmp) / "p5000") for _ in range(CLI_ROUNDS))
        print(f" 5000 tasks, whole `cpo validate` process: median {med:.2f} s of {CLI_ROUNDS}")
    print(load_note())


def validate_process(root: Path) -> float:
    """Seconds for `python -m cpo validate <root>`, start-up and output included."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "cpo", "validate", str(root)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
