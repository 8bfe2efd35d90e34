"""`cpo run --generate-only`: small shell scripts for users who run cpo by hand, and the
`cpo run` flags that repeat a run's options (the scripts and the dry run's next step)."""

from __future__ import annotations

import shlex
import stat
from dataclasses import fields
from pathlib import Path

from cpo.run.options import RunOptions

# RunOptions field -> its `cpo run` flag; fields not listed (dry_run, grace, resume, which
# --retry-failed implies) are never repeated.
_FLAGS = {
    "max_concurrent": "--max-concurrent",
    "wave": "--wave",
    "skip": "--skip",
    "retry_failed": "--retry-failed",
    "fail_fast": "--fail-fast",
    "timeout": "--timeout",
    "idle_timeout": "--idle-timeout",
    "schedule": "--schedule",
    "no_integration": "--no-integration",
    "backend": "--backend",
    "agent_command": "--agent-command",
    "model": "--model",
    "max_turns": "--max-turns",
    "approval_mode": "--approval-mode",
    "sandbox_mode": "--sandbox-mode",
    "permission_mode": "--permission-mode",
    "retries": "--retries",
    "backoff_base": "--retry-delay",
    "workspace_root": "--workspace-root",
    "allow_dirty": "--allow-dirty",
    "repair": "--repair",
    "nudges": "--nudges",
    "strict_scope": "--strict-scope",
    "on_conflict": "--on-conflict",
}


def run_flags(opts: RunOptions) -> list[str]:
    """The `cpo run` flags that give `opts` again, shell-quoted; defaults left out."""
    default = RunOptions()
    flags: list[str] = []
    for f in fields(RunOptions):
        value, flag = getattr(opts, f.name), _FLAGS.get(f.name)
        if flag is None or value == getattr(default, f.name):
            continue
        if isinstance(value, bool):
            flags.append(flag if value else flag.replace("--", "--no-", 1))
        elif isinstance(value, tuple):
            flags += [flag, shlex.quote(",".join(value))]
        elif isinstance(value, float):
            flags += [flag, f"{value:g}"]
        elif isinstance(value, Path):
            flags += [flag, shlex.quote(str(value.resolve()))]
        else:
            flags += [flag, shlex.quote(str(value))]
    return flags


RUN_SCRIPT = """#!/usr/bin/env bash
# Run this parallel directory with cpo. Extra arguments go to `cpo run`
# (e.g. --resume, --max-concurrent 4, --schedule dag).
set -euo pipefail
exec cpo run {dir}{flags} "$@"
"""

MONITOR_SCRIPT = """#!/usr/bin/env bash
# Watch a running (or finished) cpo run from another terminal.
set -euo pipefail
exec cpo status {dir} --watch "$@"
"""


def generate_scripts(parallel_dir: Path, opts: RunOptions | None = None) -> list[Path]:
    """(Re)write scripts/run-parallel.sh and scripts/monitor-live.sh: they only call cpo,
    the run script with the options given when it was generated."""
    from cpo.plan.load import load_plan

    load_plan(parallel_dir)  # refuse to write scripts for a directory that would not run
    scripts = parallel_dir / "scripts"
    scripts.mkdir(exist_ok=True)
    quoted = shlex.quote(str(parallel_dir))
    flags = "".join(" " + f for f in run_flags(opts or RunOptions()))
    written = []
    for name, template in (("run-parallel.sh", RUN_SCRIPT), ("monitor-live.sh", MONITOR_SCRIPT)):
        path = scripts / name
        path.write_text(template.format(dir=quoted, flags=flags))
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        written.append(path)
    return written
