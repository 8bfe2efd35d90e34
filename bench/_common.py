"""Shared pieces of the benchmarks: repositories, specs, timing, statistics, the README table.

Plain standard library on purpose: a benchmark must not depend on what it measures. Every
script runs contenders side by side in the same process, alternating them round after
round, so that machine noise (other developers' tests on a shared 2-core box) hits both.
"""

from __future__ import annotations

import compileall
import functools
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from _load import load_note, refusal, round_load

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
README = BENCH / "README.md"
PY = sys.executable
MARKER = ".claude-task-complete"

# The same identity and no background gc for every contender; no system/user config.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}

# The trivial agent of the overhead and scale benchmarks: write a file, commit it, write the
# completion marker. The same string runs under cpo (sh -c in the task worktree) and under
# the bare shell baseline.
TRIVIAL_AGENT = (
    'printf "%s\\n" "$CPO_TASK_ID" > "out-$CPO_TASK_ID.txt" && '
    'git add "out-$CPO_TASK_ID.txt" && git commit -q -m "$CPO_TASK_ID" && '
    f": > {MARKER}"
)


def bench_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_ENV)
    env["HOME"] = str(home)
    env["XDG_CONFIG_HOME"] = str(home / ".config")
    env.pop("CLAUDECODE", None)
    return env


@contextmanager
def scratch(prefix: str, keep: bool = False) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"cpo-bench-{prefix}-"))
    (path / "home").mkdir()
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def sh(args: Sequence[str], cwd: Path, env: Mapping[str, str]) -> str:
    proc = subprocess.run(
        list(args), cwd=cwd, env=dict(env), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed in {cwd}: {proc.stderr.strip()[-500:]}")
    return proc.stdout.strip()


# -- repositories -----------------------------------------------------------------------------
def make_template(path: Path, files: int, env: Mapping[str, str]) -> Path:
    """A repository of `files` small files in folders of 100, one commit on main."""
    path.mkdir(parents=True)
    sh(["git", "init", "-q", "-b", "main"], path, env)
    for i in range(files):
        d = path / "src" / f"d{i // 100:03d}"
        if i % 100 == 0:
            d.mkdir(parents=True)
        (d / f"f{i:05d}.txt").write_text(f"file {i}\n" * 3)
    (path / "README.md").write_text("# bench repository\n")
    sh(["git", "add", "-A"], path, env)
    sh(["git", "commit", "-q", "-m", "initial"], path, env)
    return path


def clone(template: Path, dest: Path, env: Mapping[str, str]) -> Path:
    """A fresh copy for one contender and one round (setup, not timed)."""
    sh(["git", "clone", "-q", "--local", str(template), str(dest)], template.parent, env)
    sh(["git", "config", "gc.auto", "0"], dest, env)
    sh(["git", "remote", "remove", "origin"], dest, env)
    return dest


# -- specs ----------------------------------------------------------------------------------
def write_spec(
    repo: Path,
    deps: Mapping[str, Sequence[str]],
    *,
    spec_id: str = "TS-BENCH",
    commit: bool = True,
    env: Mapping[str, str] | None = None,
    estimates: Mapping[str, float] | None = None,
) -> Path:
    """A cpo parallel directory for tasks `deps` (id -> dependency ids), waves by depth.

    `estimates` (id -> seconds) go into the task files' `estimate` key."""
    waves = wave_numbers(deps)
    root = repo / "parallel" / spec_id
    (root / "tasks").mkdir(parents=True)
    by_wave: dict[int, list[str]] = {}
    for tid in deps:
        by_wave.setdefault(waves[tid], []).append(tid)
    manifest = {
        "tech_spec_id": spec_id,
        "name": "bench",
        "waves": [{"number": n, "tasks": [{"id": t} for t in by_wave[n]]} for n in sorted(by_wave)],
    }
    for tid, ds in deps.items():
        front = f"id: {tid}\nwave: {waves[tid]}\ndeps: [{', '.join(ds)}]\n"
        if estimates is not None:
            front += f"estimate: {estimates[tid]}\n"
        (root / "tasks" / f"{tid}.md").write_text(
            f"---\n{front}---\n# {tid}\n\n## Requirements\nDo {tid}.\n"
        )
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if commit:
        assert env is not None
        sh(["git", "add", "-A"], repo, env)
        sh(["git", "commit", "-q", "-m", f"spec {spec_id}"], repo, env)
    return root


def wave_numbers(deps: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Longest path from a root + 1, as cpo computes a missing wave."""
    waves: dict[str, int] = {}
    for tid in deps:  # callers give tasks in a topological order
        waves[tid] = 1 + max((waves[d] for d in deps[tid]), default=0)
    return waves


def task_ids(n: int) -> list[str]:
    return [f"task-{i:04d}" for i in range(1, n + 1)]


# -- running and measuring -------------------------------------------------------------------
@dataclass
class Measured:
    seconds: float
    returncode: int
    peak_kb: int | None
    stdout: str
    stderr: str


def measure(
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    *,
    peak: bool = False,
    timeout: float = 1800,
) -> Measured:
    """Wall time of a process; with `peak`, its own VmHWM (children are separate processes).

    The wait blocks until the process ends, so the time is exact. (`Popen.wait(timeout=...)`
    polls with sleeps that grow to 50 ms: every time over ~0.1 s came out late by up to
    50 ms, on a grid of 50 ms.) The timeout kills from a timer thread. VmHWM only grows,
    so a thread that reads it every 10 ms and keeps the last value read before the process
    exits captures its peak resident size (the end of a run allocates nothing).
    """
    out = tempfile.TemporaryFile()  # noqa: SIM115 - read back and closed below
    err = tempfile.TemporaryFile()  # noqa: SIM115
    start = time.perf_counter()
    proc = subprocess.Popen(list(argv), cwd=cwd, env=dict(env), stdout=out, stderr=err)
    hwm: list[int] = []
    ended = threading.Event()
    status = Path(f"/proc/{proc.pid}/status")

    def sample() -> None:
        while not ended.wait(0.01):
            try:
                m = re.search(r"VmHWM:\s+(\d+) kB", status.read_text())
            except OSError:
                m = None
            if m:
                hwm.append(int(m.group(1)))

    sampler = threading.Thread(target=sample, daemon=True)
    if peak:
        sampler.start()
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        proc.kill()

    killer = threading.Timer(timeout, kill)
    killer.start()
    try:
        rc = proc.wait()
        elapsed = time.perf_counter() - start
    finally:
        killer.cancel()
        ended.set()
    if timed_out.is_set():
        raise subprocess.TimeoutExpired(list(argv), timeout)
    with out, err:
        out.seek(0)
        err.seek(0)
        text_out = out.read().decode(errors="replace")
        text_err = err.read().decode(errors="replace")
    return Measured(elapsed, rc, hwm[-1] if hwm else None, text_out, text_err)


@functools.cache
def compiled(src: Path) -> Path:
    """`src`'s cpo with its bytecode written, as `pip install` leaves it: without it, and
    with PYTHONDONTWRITEBYTECODE set (as on this VM), every run would compile cpo's ~90
    modules it imports again (~80 ms of a 0.6 s run), a cost no installed cpo has."""
    compileall.compile_dir(src / "cpo", quiet=1)
    return src


def cpo_argv(*args: str) -> list[str]:
    compiled(ROOT)
    return [PY, "-m", "cpo", *args]


# Runs `cpo` from the source tree argv[1]: the same way for this tree and for another
# revision's (`--versus REF`), which is not the installed one.
LAUNCH = (
    "import runpy, sys; sys.path.insert(0, sys.argv[1]); sys.argv = ['cpo', *sys.argv[2:]]; "
    "runpy.run_module('cpo', run_name='__main__', alter_sys=True)"
)


def cpo_argv_of(src: Path, *args: str) -> list[str]:
    """`cpo_argv` for the cpo of the source tree `src` (compiled first, as installed)."""
    return [PY, "-c", LAUNCH, str(compiled(src)), *args]


@contextmanager
def revision_tree(ref: str | None, tmp: Path, env: Mapping[str, str]) -> Iterator[Path | None]:
    """The source tree of git revision `ref` (a detached worktree under `tmp`, removed at
    the end); None for None."""
    if ref is None:
        yield None
        return
    tree = tmp / "versus-tree"
    sh(["git", "worktree", "add", "-q", "--detach", str(tree), ref], ROOT, env)
    try:
        yield tree
    finally:
        sh(["git", "worktree", "remove", "--force", str(tree)], ROOT, env)


# Runs cpo from the source tree argv[1] and counts its own costs into the JSON file argv[2]:
# report.json writes and bytes (whole writes and journal appends), git processes (through
# Git._raw), the process's CPU time, and the CPU time spent saving the report (the
# writer's `_flush`, by the CPU clock of the thread that runs it).
COUNTED = """
import atexit, json, resource, sys, time
src, out = sys.argv[1], sys.argv[2]
sys.path.insert(0, src)
import cpo.git, cpo.run.report as report
try:
    import cpo.run.reportwriter as report  # where the writer lives now
except ImportError:
    pass  # an older revision: the writer is in cpo.run.report
stats = {"writes": 0, "bytes": 0, "git": 0, "report_cpu": 0.0}
write, raw, flush = report.atomic_write, cpo.git.Git._raw, report.ReportWriter._flush
def counted_write(path, text):
    if path.name == "report.json":
        stats["writes"] += 1
        stats["bytes"] += len(text.encode())
    write(path, text)
def counted_raw(self, *args, **kwargs):
    stats["git"] += 1
    return raw(self, *args, **kwargs)
def timed_flush(self):
    start = time.thread_time()
    try:
        flush(self)
    finally:
        stats["report_cpu"] += time.thread_time() - start
report.atomic_write, cpo.git.Git._raw = counted_write, counted_raw
report.ReportWriter._flush = timed_flush
try:
    import cpo.run.journal as journal  # a cpo that appends to a journal
    append = journal.Journal.append
    def counted_append(self, line):
        stats["writes"] += 1
        stats["bytes"] += len(line.encode()) + 1
        append(self, line)
    journal.Journal.append = counted_append
except ImportError:
    pass
def dump():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    stats["cpu"] = ru.ru_utime + ru.ru_stime
    with open(out, "w") as fh:
        json.dump(stats, fh)
atexit.register(dump)
from cpo.cli import main
sys.argv = ["cpo", *sys.argv[3:]]
main()
"""


def run_counted(
    src: Path, repo: Path, pdir: Path, env: Mapping[str, str], *args: str, peak: bool = False
) -> dict[str, float]:
    """`cpo run` from the source tree `src`, with what COUNTED counts, its wall time and
    (with `peak`) its peak memory in kB."""
    out = pdir.parent / f"counts-{pdir.name}.json"
    argv = [PY, "-c", COUNTED, str(compiled(src)), str(out), "run", str(pdir), "--quiet", *args]
    m = measure(argv, repo, env, peak=peak)
    if m.returncode != 0:
        raise RuntimeError(f"cpo run failed (exit {m.returncode}):\n{m.stderr[-2000:]}")
    counts: dict[str, float] = json.loads(out.read_text())
    counts["seconds"] = m.seconds
    if m.peak_kb is not None:
        counts["peak_kb"] = m.peak_kb
    return counts


def run_cpo(
    repo: Path, pdir: Path, env: Mapping[str, str], *args: str, peak: bool = False
) -> Measured:
    m = measure(cpo_argv("run", str(pdir), "--quiet", *args), repo, env, peak=peak)
    if m.returncode != 0:
        raise RuntimeError(
            f"cpo run failed (exit {m.returncode}):\n{m.stdout[-2000:]}\n{m.stderr[-2000:]}"
        )
    return m


def load_report(pdir: Path) -> dict[str, Any]:
    """A finished run's report (report.json is whole once a run has ended)."""
    data: dict[str, Any] = json.loads((pdir / "report.json").read_text())
    return data


# -- alternating rounds (each one's load recorded: bench/_load.py) -----------------------------


def paired_rounds(
    tmp: Path, n: int, rounds: int, names: tuple[str, str], run: Callable[[str, Path], float]
) -> tuple[list[float], list[float], list[float]]:
    """`rounds` rounds of contender `names[0]` against `names[1]` at size `n`, the order
    alternating, each round in a fresh folder under `tmp` (removed after it) with its load
    recorded. `run(name, folder)` gives a contender's seconds. Returns the ratios a / b and
    both contenders' times."""
    a, b = names
    ratios: list[float] = []
    a_t: list[float] = []
    b_t: list[float] = []
    for r in range(rounds):
        base = tmp / f"n{n}-r{r}"
        with round_load(f"N={n} round {r + 1}"):
            times = {who: run(who, base) for who in ((a, b) if r % 2 == 0 else (b, a))}
        a_t.append(times[a])
        b_t.append(times[b])
        ratios.append(times[a] / times[b])
        print(
            f"  N={n} round {r + 1}: {a} {times[a]:.2f} s, {b} {times[b]:.2f} s, "
            f"ratio {ratios[-1]:.3f}",
            flush=True,
        )
        shutil.rmtree(base, ignore_errors=True)
    return ratios, a_t, b_t


def rotating_rounds(
    tmp: Path, n: int, rounds: int, names: Sequence[str], run: Callable[[str, Path], float]
) -> dict[str, list[float]]:
    """`paired_rounds` for any number of contenders: round r runs them in `names` order
    shifted by r (each goes first as often), each in a fresh folder under `tmp`. Returns
    each contender's times, round by round."""
    times: dict[str, list[float]] = {who: [] for who in names}
    for r in range(rounds):
        base = tmp / f"n{n}-r{r}"
        order = [names[(i + r) % len(names)] for i in range(len(names))]
        with round_load(f"N={n} round {r + 1}"):
            for who in order:
                times[who].append(run(who, base / str(order.index(who))))
        print(
            f"  N={n} round {r + 1}: " + ", ".join(f"{w} {times[w][-1]:.2f} s" for w in order),
            flush=True,
        )
        shutil.rmtree(base, ignore_errors=True)
    return times


# -- statistics and printing ------------------------------------------------------------------
def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def spread(xs: Sequence[float]) -> str:
    return f"{min(xs):.3f}–{max(xs):.3f}"


def fmt_ratio(xs: Sequence[float]) -> str:
    return f"{median(xs):.3f} (spread {spread(xs)}, {len(xs)} rounds)"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    git = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    return (
        f"{os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, {git}; {date.today().isoformat()}"
    )


def update_readme(section: str, body: str) -> None:
    """Replace the text between `<!-- results:NAME -->` and `<!-- /results:NAME -->`.

    bench/README.md keeps quiet-machine figures only: figures with a round taken under
    load, or whose load could not be judged (bench/_load.py), are printed, not written."""
    why = refusal()
    if why is not None:
        print(f"bench/README.md not updated: {why}")
        return
    body = f"{body.rstrip()}\n\n{load_note()}"
    text = README.read_text()
    start, end = f"<!-- results:{section} -->", f"<!-- /results:{section} -->"
    if start not in text or end not in text:
        raise SystemExit(f"{README}: markers {start} ... {end} not found")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    README.write_text(f"{head}{start}\n{body.rstrip()}\n{end}{tail}")


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)
