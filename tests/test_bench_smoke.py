"""The benchmark scripts run: each one with --quick at its smallest size.

Proves the scripts work (they build repositories, run cpo and the contenders, print a
table); it asserts no time, only that each completes and prints its figures.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.mark.parametrize(
    ("script", "expect"),
    [
        ("bench_overhead.py", "cpo / baseline"),
        ("bench_overhead.py --versus HEAD", "cpo / HEAD"),
        ("bench_makespan.py", "`--schedule dag`, tasks with `estimate` / bound"),
        ("bench_makespan.py --latency", "dependent start latency"),
        ("bench_scale.py", "cold start `cpo --help`"),
        ("bench_scale.py --big-repo 300", "first agent after launch"),
        ("bench_worktree_race.py", "failed runs"),
        ("bench_recovery.py", "git steps killed"),
        pytest.param(
            "bench_serve.py",
            "event sequences with a gap | 0",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("fastapi") is None, reason="needs the [serve] extra"
            ),
        ),
        # Starts a local Ray head of its own (the `ray` extra; tests/raycluster.py).
        pytest.param(
            "bench_ray.py",
            "ray / local",
            marks=[
                pytest.mark.ray,
                pytest.mark.skipif(
                    importlib.util.find_spec("ray") is None, reason="needs the [ray] extra"
                ),
            ],
        ),
        # Installs parallel-orchestra from the package index; prints why when it cannot.
        pytest.param(
            "bench_peer.py",
            "parallel-orchestra",
            marks=[pytest.mark.slow, pytest.mark.network],
        ),
    ],
)
def test_bench_script_quick(script: str, expect: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH / script.split()[0]), *script.split()[1:], "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert expect in proc.stdout
    assert "load: " in proc.stdout  # each round's load recorded, the table says how loaded
