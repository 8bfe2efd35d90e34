"""Where does `cpo run` spend its time? Runs cpo in-process with every git call timed.

    .venv/bin/python bench/profile_run.py <cpo run arguments...>

Prints, per git subcommand, the number of calls and their total time, and the wall time
of the run. (cProfile sees only the main thread; the tasks run on worker threads, and
their cost is mostly the git processes they start, which this counts.)
"""

from __future__ import annotations

import sys
import threading
import time
from collections import defaultdict

from _common import load_note, round_load

from cpo import cli
from cpo.git import Git

calls: dict[str, list[float]] = defaultdict(list)
lock = threading.Lock()
_raw = Git._raw


def timed_raw(
    self: Git, args: list[str], cwd: object, stdin: str | None = None
) -> tuple[int, str, str]:
    start = time.perf_counter()
    try:
        return _raw(self, args, cwd, stdin)  # type: ignore[arg-type]
    finally:
        key = " ".join(a for a in args[:2] if not a.startswith("-"))
        with lock:
            calls[key].append(time.perf_counter() - start)


def main() -> None:
    Git._raw = timed_raw  # type: ignore[method-assign]
    start = time.perf_counter()
    with round_load("the run"):
        try:
            cli.main(["run", *sys.argv[1:]])
        except SystemExit as exc:
            code = exc.code
        else:
            code = 0
    wall = time.perf_counter() - start
    print(f"\nexit {code}, wall {wall:.2f} s; git calls by cpo:", file=sys.stderr)
    for key, ts in sorted(calls.items(), key=lambda kv: -sum(kv[1])):
        print(f"  {key:28s} {len(ts):5d} calls {sum(ts):8.2f} s", file=sys.stderr)
    print(load_note(), file=sys.stderr)


if __name__ == "__main__":
    main()
