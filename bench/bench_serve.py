"""`cpo serve` under load: SSE clients and concurrent report reads while runs are active.

Three runs (scripted claude, each task sleeping a few seconds, so the reports change all
along) are started through the API; then N Server-Sent-Events clients follow them to the
end while M concurrent `GET /api/v1/runs/{id}` are made in rounds. Printed: errors, event
sequences with a gap (must be 0), events received, and the GET latency p50/p99/max.
Loopback only; bounded in clients, rounds and time. Not a timed test: it prints figures.

    python bench/bench_serve.py            # 50 SSE clients, 200 concurrent GETs x 5 rounds
    python bench/bench_serve.py --quick    # 10 SSE clients, 40 concurrent GETs x 2 rounds
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import itertools

from _common import PY, ROOT, bench_env, load_note, round_load, scratch, sh, table

DEADLINE_SECONDS = 240  # the whole benchmark gives up after this


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_repo(path: Path, spec: str, tasks: int, sleep: float, env: dict[str, str]) -> Path:
    path.mkdir()
    sh(["git", "init", "-q", "-b", "main"], path, env)
    sh(["git", "commit", "-q", "--allow-empty", "-m", "initial"], path, env)
    root = path / "parallel" / spec
    (root / "tasks").mkdir(parents=True)
    ids = [f"{spec.lower()}-t{i}" for i in range(1, tasks + 1)]  # unique across repos
    for tid in ids:
        body = f"@script sleep {sleep}\n@script text step of {tid}\n@script marker\n"
        front = f"---\nid: {tid}\nwave: 1\n---\n# {tid}\n\n## Requirements\n{body}"
        (root / "tasks" / f"{tid}.md").write_text(front)
    manifest = {"tech_spec_id": spec, "waves": [{"number": 1, "tasks": [{"id": t} for t in ids]}]}
    (root / "manifest.json").write_text(json.dumps(manifest) + "\n")
    sh(["git", "add", "-A"], path, env)
    sh(["git", "commit", "-q", "-m", "spec"], path, env)
    return root


def request(port: int, method: str, path: str, body: Any = None) -> tuple[int, Any, float]:
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    data = None if body is None else json.dumps(body).encode()
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    text = resp.read()
    conn.close()
    return resp.status, json.loads(text or b"null"), time.perf_counter() - start


def follow(port: int, rid: str, out: dict[str, Any]) -> None:
    """One SSE client: every sequence number after the snapshot must come, in order."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.request("GET", f"/api/v1/runs/{rid}/events")
        resp = conn.getresponse()
        if resp.status != 200:
            out["error"] = f"HTTP {resp.status}"
            return
        seqs = []
        for raw in resp:
            line = raw.decode()
            if line.startswith("id: "):
                seqs.append(int(line[4:]))
        conn.close()
        out["events"] = len(seqs)
        out["gaps"] = sum(1 for a, b in itertools.pairwise(seqs) if b != a + 1)
    except Exception as exc:  # counted, not raised: the figure is how many failed
        out["error"] = f"{type(exc).__name__}: {exc}"


def percentile(xs: list[float], p: float) -> float:
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (the smoke test)")
    ap.add_argument("--sse", type=int, default=None, help="SSE clients (default 50)")
    ap.add_argument("--gets", type=int, default=None, help="concurrent GETs (default 200)")
    args = ap.parse_args()
    n_sse = args.sse or (10 if args.quick else 50)
    n_get = args.gets or (40 if args.quick else 200)
    rounds = 2 if args.quick else 5
    sleep = 2.0 if args.quick else 6.0

    with scratch("serve") as tmp:
        env = bench_env(tmp / "home")
        from cpo.scripted.agent import install_shim

        install_shim(tmp / "bin")
        env.update(PATH=f"{tmp / 'bin'}{os.pathsep}{env['PATH']}", IS_SANDBOX="1")
        env["CPO_FAKE_STATE"] = str(tmp / "fake-state")
        env.pop("CPO_API_KEYS", None)
        repos = [make_repo(tmp / f"r{i}", f"TS-{i}", 3, sleep, env) for i in range(3)]
        port = free_port()
        roots = [a for r in repos for a in ("--root", str(r.parent.parent))]
        server = subprocess.Popen(
            [PY, "-m", "cpo", "serve", "--port", str(port), *roots],
            cwd=tmp,
            env={**env, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            return run(port, repos, n_sse, n_get, rounds)
        finally:
            server.terminate()
            server.wait(timeout=30)


def run(port: int, repos: list[Path], n_sse: int, n_get: int, rounds: int) -> int:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        try:
            if request(port, "GET", "/health")[0] == 200:
                break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    ids = []
    for root in repos:
        status, body, _ = request(port, "POST", "/api/v1/runs", {"dir": str(root)})
        if status != 202:
            print(f"could not start a run in {root}: {status} {body}")
            return 1
        ids.append(body["id"])
    results: list[dict[str, Any]] = [{} for _ in range(n_sse)]
    clients = [
        threading.Thread(target=follow, args=(port, ids[i % len(ids)], results[i]), daemon=True)
        for i in range(n_sse)
    ]
    for c in clients:
        c.start()
    latencies: list[float] = []
    get_errors = 0
    with ThreadPoolExecutor(max_workers=n_get) as pool:
        for r in range(rounds):
            with round_load(f"GET round {r + 1}"):
                paths = [f"/api/v1/runs/{ids[(i + r) % len(ids)]}" for i in range(n_get)]
                for status, _body, secs in pool.map(lambda p: request(port, "GET", p), paths):
                    latencies.append(secs)
                    get_errors += status != 200
    for c in clients:
        c.join(timeout=max(1.0, deadline - time.monotonic()))
    sse_errors = sum(1 for r in results if "error" in r or "events" not in r)
    gaps = sum(r.get("gaps", 0) for r in results)
    events = [r.get("events", 0) for r in results]
    rows = [
        ["SSE clients (3 active runs)", str(n_sse)],
        ["SSE errors or unfinished", str(sse_errors)],
        ["event sequences with a gap", str(gaps)],
        ["events per client, min / max", f"{min(events)} / {max(events)}"],
        [f"GET /api/v1/runs/{{id}}, {n_get} at once x {rounds}", str(len(latencies))],
        ["GET errors", str(get_errors)],
        [
            "GET latency p50 / p99 / max (ms)",
            " / ".join(f"{percentile(latencies, p) * 1000:.0f}" for p in (50, 99, 100)),
        ],
    ]
    print(table(["cpo serve under load", "value"], rows))
    print(load_note())
    return 0 if sse_errors == 0 and gaps == 0 and get_errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
