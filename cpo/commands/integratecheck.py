"""`cpo integrate`'s final validation, under the conditions `cpo run` validated under.

A run validates each wave in its integration worktree once that worktree is ready
(cpo.run.ready.ready_for_validation: the `.worktreeinclude` files and config
`worktree.include` patterns copied in, `share` folders linked, the spec's setup commands
run), with the spec's `env:` and cpo's run variables, each command stopped at the
validation timeout (cpo.run.validation.validation_timeout). The merge result `cpo
integrate` validates gets the same, through the same code: a validation that passed under
`cpo run` fails here only if the merged work breaks it, never because the tree lacks a
`.env` or installed dependencies, and a hanging command never hangs `cpo integrate`.
The commands run through a process registry with its watchdog, as a run's validations do
(cpo.proc): none outlives `cpo integrate`, whether it is interrupted or killed.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cpo.config import load_settings
from cpo.errors import PlanError, UsageError
from cpo.git import Git
from cpo.plan.load import load_plan
from cpo.plan.model import Plan, ValidationStep
from cpo.planfile.paths import plan_file_of
from cpo.proc import ProcessRegistry
from cpo.run.interrupt import install_interrupt_handlers, restore_handlers
from cpo.run.ready import Readiness, find_readiness, ready_for_validation
from cpo.run.report import Report
from cpo.run.taskenv import RunEnv, secret_candidates
from cpo.run.validation import OUTPUT_TAIL_CHARS, run_validation, validation_timeout
from cpo.secrets import Masker

# Its own log, beside the run's `integration-setup.log`: what readied the merge result.
SETUP_LOG = "integrate-setup.log"


@dataclass(frozen=True)
class WaveCheck:
    wave: int
    commands: tuple[str, ...]
    ok: bool
    exit_code: int | None
    duration: float
    output_tail: str
    timed_out_after: float | None = None  # seconds: stopped at the validation timeout


@dataclass(frozen=True)
class SetupFailure:
    """Readying the merge result failed: nothing was validated, nothing lands."""

    error: str  # which setup command failed, and how
    log: Path
    output_tail: str


@dataclass(frozen=True)
class Conditions:
    """What the validations of the merge result run under, as under `cpo run`."""

    run_env: RunEnv
    masker: Masker
    ready: Readiness | None = None  # None: no wave has validation commands
    timeout: float | None = None  # each command's, in seconds


def conditions(report: Report, parallel_dir: Path, git: Git, repo: Path) -> Conditions:
    """Read before anything is merged: a spec that does not load, or settings that do not,
    stop `cpo integrate` before it changes anything."""
    integ = report.integration_branch
    if not any(w.validation for w in report.waves):
        return Conditions(RunEnv(parallel_dir, report.spec_id, integ), Masker(os.environ))
    plan = _spec(report, parallel_dir)
    settings = load_settings(repo)
    return Conditions(
        RunEnv(parallel_dir, report.spec_id, integ, plan.env),
        Masker(secret_candidates(plan)),
        find_readiness(git, repo, plan, settings),
        validation_timeout(settings),
    )


def _spec(report: Report, parallel_dir: Path) -> Plan:
    """The spec as a run (or `--resume`) reads it: the report keeps neither its `env:`
    (values may be secrets) nor its setup. A plan file sets neither (its run readies the
    integration worktree from the config and `.worktreeinclude` alone): a bare plan."""
    if plan_file_of(parallel_dir) is not None:
        return Plan(root=parallel_dir, spec_id=report.spec_id, waves=(), tasks={})
    try:
        return load_plan(parallel_dir)
    except PlanError as exc:
        raise UsageError(
            f"{parallel_dir}: the spec does not load ({'; '.join(exc.lines()[:3])}), and "
            "the validations run with its env: and setup as under cpo run",
            hint=f"fix it (cpo validate {shlex.quote(str(parallel_dir))}), or skip the "
            "validation: cpo integrate --no-validate",
        ) from exc


@contextlib.contextmanager
def watched(stop: threading.Event) -> Iterator[ProcessRegistry]:
    """Where the setup and validation commands run, as under `cpo run`: each in its own
    process group, tagged with the registry's id, known to the watchdog (which stops them
    all if cpo dies, even by SIGKILL). Ctrl-C or SIGTERM meanwhile stops them and sets
    `stop`: the caller lands nothing then. What is left on the way out (a command's child
    that left its group) is stopped too."""
    registry = ProcessRegistry()
    restore = install_interrupt_handlers(stop, registry)
    registry.start_watchdog()
    try:
        yield registry
    finally:
        restore_handlers(restore)
        if registry.live_count():
            registry.terminate_all()
        registry.stop_watchdog()  # it stops what is left with the registry's tag


def check_merge(
    report: Report, parallel_dir: Path, tree: Path, cond: Conditions, registry: ProcessRegistry
) -> SetupFailure | list[WaveCheck]:
    """Ready the merge result in `tree` as a run readies its integration worktree, then
    run every wave's validation there, stopping at the first failure."""
    env = cond.run_env.for_integration(tree)
    if cond.ready is not None:
        log = parallel_dir / "logs" / SETUP_LOG
        log.unlink(missing_ok=True)  # this integrate's, not an earlier one's
        error = ready_for_validation(
            cond.ready,
            tree,
            env=env,
            timeout=cond.timeout,
            registry=registry,
            log=log,
            masker=cond.masker,
        )
        if error is not None:
            tail = log.read_text(encoding="utf-8", errors="replace")[-OUTPUT_TAIL_CHARS:]
            return SetupFailure(cond.masker.mask(error), log, tail)
    checks = []
    for wave in report.waves:
        steps = tuple(ValidationStep(v.kind, v.source) for v in wave.validation)
        if not steps:
            continue
        res = run_validation(steps, cwd=tree, timeout=cond.timeout, registry=registry, base_env=env)
        checks.append(
            WaveCheck(
                wave.number,
                tuple(s.source for s in steps),
                res.ok,
                res.exit_code,
                round(res.duration, 3),
                cond.masker.mask(res.output_tail),
                cond.timeout if res.timed_out else None,
            )
        )
        if not res.ok:
            break  # later waves build on this one: their checks would say nothing new
    return checks
