"""`cpo run --generate-only`: small shell scripts for users who run cpo by hand."""

from __future__ import annotations

import shlex
import stat
from pathlib import Path

RUN_SCRIPT = """#!/usr/bin/env bash
# Run this parallel directory with cpo. Extra arguments go to `cpo run`
# (e.g. --resume, --max-concurrent 4, --schedule dag).
set -euo pipefail
exec cpo run {dir} "$@"
"""

MONITOR_SCRIPT = """#!/usr/bin/env bash
# Watch a running (or finished) cpo run from another terminal.
set -euo pipefail
exec cpo status {dir} --watch "$@"
"""


def generate_scripts(parallel_dir: Path) -> list[Path]:
    """(Re)write scripts/run-parallel.sh and scripts/monitor-live.sh: they only call cpo."""
    from cpo.plan.load import load_plan

    load_plan(parallel_dir)  # refuse to write scripts for a directory that would not run
    scripts = parallel_dir / "scripts"
    scripts.mkdir(exist_ok=True)
    quoted = shlex.quote(str(parallel_dir))
    written = []
    for name, template in (("run-parallel.sh", RUN_SCRIPT), ("monitor-live.sh", MONITOR_SCRIPT)):
        path = scripts / name
        path.write_text(template.format(dir=quoted))
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        written.append(path)
    return written
