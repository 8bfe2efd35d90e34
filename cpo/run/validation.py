"""Wave validation: run the wave's commands on the merged tree in the integration worktree."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cpo.plan.model import ValidationStep
from cpo.proc import ProcessRegistry, run_capture

if TYPE_CHECKING:
    from cpo.settings import Settings

OUTPUT_TAIL_CHARS = 4000
# The wave's log keeps each step's whole output up to this much (head and tail beyond).
LOG_OUTPUT_CHARS = 200_000


@dataclass(frozen=True)
class ValidationResult:
    ok: bool
    exit_code: int | None
    duration: float
    output_tail: str
    log: str = ""  # every step run: command, exit code, duration, output (capped)
    timed_out: bool = False  # the failing step was stopped at the timeout


def validation_timeout(settings: Settings) -> float | None:
    """How long one validation or setup command of the merged tree may run before its
    process group is stopped: config `timeouts.task`, as for an agent (default 2h). The
    one rule for `cpo run` and `cpo integrate`, so a hanging command never hangs cpo."""
    return settings.timeouts.task


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
    base_env: Mapping[str, str] | None = None,
) -> ValidationResult:
    """Run each step in order, stopping at the first failure. `base_env`: the environment
    (default cpo's own); a run passes its integration environment, with the spec's `env:`."""
    start = time.monotonic()
    env = dict(os.environ if base_env is None else base_env)
    # Python validations import the project's modules from the merged tree.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(cwd), env.get("PYTHONPATH")]))
    outputs: list[str] = []
    log: list[str] = [f"# validation in {cwd}"]
    code: int | None = 0
    for step in steps:
        step_start = time.monotonic()
        if step.kind == "python":
            python = python_on_path(env.get("PATH"))
            code, out, timed_out = run_capture(
                [python, "-c", step.source], cwd=cwd, env=env, timeout=timeout, registry=registry
            )
            shown = f"{shlex.quote(python)} -c {shlex.quote(step.source.rstrip())}"
        else:  # the user's own shell command: shell=True by design
            code, out, timed_out = run_capture(
                step.source, cwd=cwd, env=env, shell=True, timeout=timeout, registry=registry
            )
            shown = step.source.rstrip()
        outputs.append(out)
        if timed_out:
            outputs.append(f"[cpo] validation timed out after {timeout} s")
        log += _step_log(shown, out, code, time.monotonic() - step_start, timed_out)
        if code != 0:
            took = time.monotonic() - start
            return ValidationResult(False, code, took, _tail(outputs), _joined(log), timed_out)
    if not steps:
        log.append("no validation commands")
    return ValidationResult(True, code, time.monotonic() - start, _tail(outputs), _joined(log))


def _step_log(
    command: str, output: str, code: int | None, seconds: float, timed_out: bool
) -> list[str]:
    """One step in the wave's log: what ran, what it said, how it ended."""
    if len(output) > LOG_OUTPUT_CHARS:
        half = LOG_OUTPUT_CHARS // 2
        cut = len(output) - LOG_OUTPUT_CHARS
        output = f"{output[:half]}\n[cpo] ... {cut} characters left out ...\n{output[-half:]}"
    end = "timed out" if timed_out else f"exit code {code}"
    return [
        "",
        f"$ {command}",
        output.rstrip() if output.strip() else "(no output)",
        f"# {end} after {seconds:.1f} s" + (" (failed)" if code != 0 else ""),
    ]


def _joined(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


def _tail(outputs: list[str]) -> str:
    text = "\n".join(o for o in outputs if o)
    return text[-OUTPUT_TAIL_CHARS:]
