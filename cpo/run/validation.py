"""Wave validation: run the wave's commands on the merged tree in the integration worktree."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cpo.plan.model import ValidationStep
from cpo.proc import ProcessRegistry, run_capture

OUTPUT_TAIL_CHARS = 4000


@dataclass(frozen=True)
class ValidationResult:
    ok: bool
    exit_code: int | None
    duration: float
    output_tail: str


def python_on_path(path_env: str | None) -> str:
    """The interpreter the user's project uses: `python3`/`python` on PATH, else ours."""
    for name in ("python3", "python"):
        found = shutil.which(name, path=path_env)
        if found:
            return found
    return sys.executable


def run_validation(
    steps: Sequence[ValidationStep],
    *,
    cwd: Path,
    timeout: float | None = None,
    registry: ProcessRegistry | None = None,
) -> ValidationResult:
    """Run each step in order, stopping at the first failure."""
    start = time.monotonic()
    env = dict(os.environ)
    # Python validations import the project's modules from the merged tree.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(cwd), env.get("PYTHONPATH")]))
    outputs: list[str] = []
    code: int | None = 0
    for step in steps:
        if step.kind == "python":
            argv: list[str] | str = [python_on_path(env.get("PATH")), "-c", step.source]
            code, out, timed_out = run_capture(
                argv, cwd=cwd, env=env, timeout=timeout, registry=registry
            )
        else:  # the user's own shell command: shell=True by design
            code, out, timed_out = run_capture(
                step.source, cwd=cwd, env=env, shell=True, timeout=timeout, registry=registry
            )
        outputs.append(out)
        if timed_out:
            outputs.append(f"[cpo] validation timed out after {timeout} s")
        if code != 0:
            return ValidationResult(False, code, time.monotonic() - start, _tail(outputs))
    return ValidationResult(True, code, time.monotonic() - start, _tail(outputs))


def _tail(outputs: list[str]) -> str:
    text = "\n".join(o for o in outputs if o)
    return text[-OUTPUT_TAIL_CHARS:]
