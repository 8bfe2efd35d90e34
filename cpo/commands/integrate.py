"""`cpo integrate`: merge a finished run's integration branch into its target, validated.

How it stays safe (the user's working tree is never changed behind their back):
1. The merge (`--no-ff`) is made in a temporary worktree, detached at the target's head,
   so the merge result exists before anything moves.
2. Every wave's validation commands run on that merge result (unless `--no-validate`):
   what is validated is exactly what lands, even when the target moved since the run.
   They run with the environment `cpo run` gives them: the spec's `env:` (read from the
   spec, as a run reads it) and cpo's run variables.
3. Landing it:
   - target not checked out anywhere: the branch ref is moved to the merge commit, only if
     it still points where it did (compare-and-swap; nobody's work is overwritten);
   - target checked out in a working tree (usually `main` in your own checkout): cpo does not
     touch that tree unless `--allow-checkout-merge` is given and the tree is clean (cpo's
     own outputs aside, cpo.run.changes); then it fast-forwards it to the
     validated merge commit. Otherwise it prints the exact git command to run there.
A conflict or a failed validation leaves the target untouched. Every outcome is written to
`integration-report.md` in the parallel directory.
"""

from __future__ import annotations

import contextlib
import os
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cpo.errors import CpoError, ExitCode, GitError, PlanError, PreflightError, UsageError
from cpo.git import Git, find_repo
from cpo.gitenv import identity_problem
from cpo.plan.load import load_plan
from cpo.plan.model import ValidationStep
from cpo.planfile.translate import plan_file_of
from cpo.run.changes import user_changes
from cpo.run.journal import atomic_write
from cpo.run.layout import default_workspace_root
from cpo.run.repair import repair_lines
from cpo.run.report import Report, now_iso, status_words
from cpo.run.scopecheck import scope_lines
from cpo.run.taskenv import RunEnv, secret_candidates
from cpo.run.validation import run_validation
from cpo.secrets import Masker

INTEGRATION_REPORT = "integration-report.md"

Outcome = Literal["merged", "already_merged", "manual", "conflict", "validation_failed"]


class NotReadyError(CpoError):
    """The run is not in a state worth merging (failed tasks, a dirty checkout)."""

    exit_code = ExitCode.FAILED


@dataclass(frozen=True)
class IntegrateOptions:
    into: str | None = None
    validate: bool = True
    force: bool = False
    allow_checkout_merge: bool = False


@dataclass(frozen=True)
class WaveCheck:
    wave: int
    commands: tuple[str, ...]
    ok: bool
    exit_code: int | None
    duration: float
    output_tail: str


@dataclass
class IntegrateResult:
    outcome: Outcome
    target: str
    integration_branch: str
    target_before: str
    merge_commit: str | None = None
    command: str | None = None  # for "manual": what to run in the checkout
    checkout: Path | None = None
    conflict_files: list[str] = field(default_factory=list)
    checks: list[WaveCheck] = field(default_factory=list)
    validated: bool = False
    report_path: Path | None = None

    @property
    def exit_code(self) -> ExitCode:
        ok = self.outcome in ("merged", "already_merged", "manual")
        return ExitCode.OK if ok else ExitCode.FAILED


def integrate(parallel_dir: Path, opts: IntegrateOptions) -> IntegrateResult:
    from cpo.commands.status import finished_report

    parallel_dir = parallel_dir.resolve()
    report = finished_report(
        parallel_dir,
        no_run=f"no run in {parallel_dir}: start one with cpo run {parallel_dir}",
        wait_hint="wait for the run to end (cpo status --watch) before integrating",
    )
    integ = report.integration_branch
    if not integ:
        raise UsageError(
            f"the run in {parallel_dir} has no integration branch (--no-integration)",
            hint="merge its task branches yourself, or run it again without --no-integration",
        )
    _check_completed(report, parallel_dir, opts.force)
    repo = Path(report.repository) if report.repository else find_repo(parallel_dir)
    git = Git(repo)
    if not git.branch_exists(integ):
        raise UsageError(
            f"the integration branch {integ} does not exist any more",
            hint=f"run the spec again: cpo run {parallel_dir} --resume",
        )
    target = opts.into or report.base_branch
    if not target:
        raise UsageError("the report names no base branch: say where to merge with --into")
    if target == integ:
        raise UsageError(f"--into {target}: that is the integration branch itself")
    before = git.rev(f"refs/heads/{target}")
    if before is None:
        raise UsageError(f"--into {target}: no such branch in {repo}")

    identity = identity_problem(git)
    if identity:
        # The merge commit goes into the user's branch: it must carry their identity.
        raise PreflightError(identity)
    result = IntegrateResult("merged", target, integ, before)
    if git.is_ancestor(integ, before):
        result.outcome = "already_merged"
        result.report_path = write_report(parallel_dir, report, git, result)
        return result
    # Read before anything is merged: a spec that does not load stops here.
    validation = _validation_env(report, parallel_dir) if opts.validate else None

    holder = _checked_out_in(git, target)
    if holder is not None and opts.allow_checkout_merge:
        dirty = user_changes(git, holder)
        if dirty:
            raise NotReadyError(
                f"{holder} (where {target} is checked out) has uncommitted changes: "
                + ", ".join(dirty[:5])
                + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else ""),
                hint=f"commit or stash them, then run again; or merge by hand there: "
                f"{_merge_command(holder, integ, report)}",
            )

    with _temporary_worktree(git, _merge_worktree(report, repo), before) as tmp:
        merged = git.merge(tmp, integ, _message(report, integ, target))
        if not merged.ok:
            result.outcome = "conflict"
            result.conflict_files = list(merged.conflict_files)
        else:
            result.merge_commit = merged.commit
            if validation is not None:
                run_env, masker = validation
                result.checks = _validate(report, tmp, run_env.for_integration(tmp), masker)
                result.validated = True
                if not all(c.ok for c in result.checks):
                    result.outcome = "validation_failed"
        if result.outcome == "merged":
            assert result.merge_commit is not None
            if holder is None:
                git.update_branch(target, result.merge_commit, before)
            elif opts.allow_checkout_merge:
                git.fast_forward(holder, result.merge_commit)
            else:
                result.outcome = "manual"
                result.checkout = holder
                result.command = _merge_command(holder, integ, report)
    result.report_path = write_report(parallel_dir, report, git, result)
    return result


def _check_completed(report: Report, parallel_dir: Path, force: bool) -> None:
    if report.status == "completed" or force:
        return
    bad = [f"{t.id} {status_words(t)}" for t in report.tasks.values() if t.status != "completed"]
    waves = [f"wave {w.number} {w.status}" for w in report.waves if w.status == "failed"]
    raise NotReadyError(
        f"the run is {report.status}, not completed: " + "; ".join(bad + waves or ["-"]),
        hint=f"finish it first (cpo run {parallel_dir} --retry-failed), "
        "or cpo integrate --force to merge what the integration branch holds",
    )


def _merge_worktree(report: Report, repo: Path) -> Path:
    """Where the merge is made: beside the run's worktrees, in `<workspace root>/<spec>/`
    (`.integrate`: a task id cannot start with a dot, so no task's worktree is there)."""
    root = Path(report.workspace_root) if report.workspace_root else default_workspace_root(repo)
    return root / report.spec_id / ".integrate"


def _checked_out_in(git: Git, branch: str) -> Path | None:
    return next((p for p, b in git.worktrees().items() if b == branch), None)


def _message(report: Report, integ: str, target: str) -> str:
    return f"Merge {integ} into {target} (cpo integrate {report.spec_id})"


def _merge_command(holder: Path, integ: str, report: Report) -> str:
    message = _message(report, integ, "HEAD").replace(" into HEAD", "")
    return (
        f"git -C {shlex.quote(str(holder))} merge --no-ff -m {shlex.quote(message)} "
        f"{shlex.quote(integ)}"
    )


@contextlib.contextmanager
def _temporary_worktree(git: Git, path: Path, commit: str) -> Iterator[Path]:
    """A detached worktree at `commit`, always removed afterwards (even after a crash)."""
    path = path.resolve()
    if path in git.worktrees():
        git.remove_worktree(path, force=True)  # left by an interrupted integrate
    elif path.exists():
        raise UsageError(
            f"{path} exists and is not a git worktree",
            hint="move it aside: cpo integrate merges in a temporary worktree there",
        )
    git.add_detached_worktree(path, commit)
    try:
        yield path
    finally:
        with contextlib.suppress(GitError):
            git.remove_worktree(path, force=True)


def _validation_env(report: Report, parallel_dir: Path) -> tuple[RunEnv, Masker]:
    """What the validations run with, as in `cpo run` (cpo.run.hooks): the integration
    worktree's environment, with the spec's `env:`; and a masker that knows its values.
    The `env:` is read from the spec, as a run (or `--resume`) reads it: the report does not
    keep it, since its values may be secrets. A plan file has no `env:`."""
    spec_env: tuple[tuple[str, str], ...] = ()
    masker = Masker(os.environ)
    if plan_file_of(parallel_dir) is None and any(w.validation for w in report.waves):
        try:
            plan = load_plan(parallel_dir)
        except PlanError as exc:
            raise UsageError(
                f"{parallel_dir}: the spec does not load ({'; '.join(exc.lines()[:3])}), and "
                "the validations run with its env: as under cpo run",
                hint=f"fix it (cpo validate {shlex.quote(str(parallel_dir))}), or skip the "
                "validation: cpo integrate --no-validate",
            ) from exc
        spec_env, masker = plan.env, Masker(secret_candidates(plan))
    integ = report.integration_branch
    return RunEnv(parallel_dir, report.spec_id, integ, spec_env), masker


def _validate(report: Report, cwd: Path, env: dict[str, str], masker: Masker) -> list[WaveCheck]:
    checks = []
    for wave in report.waves:
        steps = tuple(ValidationStep(v.kind, v.source) for v in wave.validation)
        if not steps:
            continue
        res = run_validation(steps, cwd=cwd, base_env=env)
        checks.append(
            WaveCheck(
                wave.number,
                tuple(s.source for s in steps),
                res.ok,
                res.exit_code,
                round(res.duration, 3),
                masker.mask(res.output_tail),
            )
        )
        if not res.ok:
            break  # later waves build on this one: their checks would say nothing new
    return checks


# -- integration-report.md ---------------------------------------------------------------------
def write_report(parallel_dir: Path, report: Report, git: Git, result: IntegrateResult) -> Path:
    path = parallel_dir / INTEGRATION_REPORT
    atomic_write(path, "\n".join(report_lines(report, git, result)) + "\n")
    return path


def outcome_line(result: IntegrateResult) -> str:
    integ, target = result.integration_branch, result.target
    short = (result.merge_commit or "")[:10]
    return {
        "merged": f"merged {integ} into {target} (merge commit {short})",
        "already_merged": f"nothing to merge: {integ} is already in {target}",
        "manual": ("validated, " if result.validated else "")
        + f"not merged yet: {target} is checked out in {result.checkout}, "
        "which cpo does not touch; merge there with the command below "
        "(or cpo integrate --allow-checkout-merge)",
        "conflict": f"not merged: {integ} conflicts with {target} in "
        + (", ".join(result.conflict_files) or "some files")
        + f"; {target} is untouched",
        "validation_failed": f"not merged: validation failed on the merge result; "
        f"{target} is untouched",
    }[result.outcome]


def report_lines(report: Report, git: Git, result: IntegrateResult) -> list[str]:
    integ, before = result.integration_branch, result.target_before
    end = result.merge_commit or integ
    base = git.merge_base(before, integ) or before
    commits = git.log_oneline(base, integ)
    files = git.files_changed(base, end if result.merge_commit else integ)
    totals = report.totals()
    lines = [
        f"# Integration report: {report.spec_id}",
        "",
        f"- Result: {outcome_line(result)}",
        f"- Date: {now_iso()}",
        f"- Integration branch: `{integ}` at `{(git.rev(integ) or '')[:10]}`",
        f"- Target: `{result.target}` at `{before[:10]}`"
        + (
            f" → `{result.merge_commit[:10]}`"
            if result.merge_commit and result.outcome == "merged"
            else ""
        ),
        f"- Run: {report.status} (started {report.started_at}, finished "
        f"{report.finished_at or '-'}), base `{report.base_branch}` at "
        f"`{(report.base_commit or '')[:10]}`",
        f"- Tasks: {totals['completed']}/{totals['tasks']} completed"
        + (f", {totals['failed']} failed" if totals["failed"] else "")
        + (f", {totals['skipped']} skipped" if totals["skipped"] else ""),
        f"- Agent cost: ${totals['cost_usd']:.2f}",
    ]
    if result.command:
        lines += ["", "```", result.command, "```"]
    lines += [
        "",
        "## Tasks",
        "",
        "| task | wave | status | commits | files | branch | cost |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in report.tasks.values():
        status = status_words(t)
        cost = f"${t.cost_usd:.2f}" if t.cost_usd else "-"
        lines.append(
            f"| {t.id} | {t.wave} | {status} | {t.commits} | {len(t.files_changed)} "
            f"| `{t.branch}` | {cost} |"
        )
    lines += ["", f"## Commits ({len(commits)})", ""]
    lines += [f"- {c}" for c in commits] or ["- none"]
    lines += ["", f"## Files changed ({len(files)})", ""]
    lines += [f"- `{f}`" for f in files] or ["- none"]
    lines += ["", "## Validation", ""]
    if result.outcome in ("already_merged", "conflict"):
        lines.append(
            "not run ("
            + ("nothing to merge" if result.outcome != "conflict" else "the merge conflicted")
            + ")"
        )
    elif not result.validated:
        lines.append("skipped (--no-validate)")
    elif not result.checks:
        lines.append("no wave has validation commands")
    else:
        for c in result.checks:
            verdict = "passed" if c.ok else f"FAILED (exit {c.exit_code})"
            lines.append(f"- wave {c.wave}: {verdict} in {c.duration:.1f} s")
            lines += [f"  - `{_first_line(cmd)}`" for cmd in c.commands]
            if not c.ok and c.output_tail.strip():
                lines += ["", "```", c.output_tail.rstrip(), "```", ""]
    if result.conflict_files:
        lines += ["", "## Conflicts", ""] + [f"- `{f}`" for f in result.conflict_files]
    for title, notes in (("Repairs", repair_lines(report)), ("Out of scope", scope_lines(report))):
        lines += ["", f"## {title}", "", *(f"- {n}" for n in notes)] if notes else []
    return lines


def _first_line(command: str) -> str:
    text = command.strip().splitlines()
    return (text[0] + (" …" if len(text) > 1 else "")) if text else ""
