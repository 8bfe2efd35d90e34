"""`cpo integrate`: merge a finished run's integration branch into its target, validated.

How it stays safe (the user's working tree is never changed behind their back):
1. The merge (`--no-ff`) is made in a temporary worktree, detached at the target's head,
   so the merge result exists before anything moves.
2. Every wave's validation commands run on that merge result (unless `--no-validate`):
   what is validated is exactly what lands, even when the target moved since the run.
   They run under the conditions `cpo run` validated under (cpo.commands.integratecheck):
   the tree made ready as the run's integration worktree was (included files, shared
   folders, the spec's setup), the spec's `env:` and cpo's run variables, the validation
   timeout.
3. Landing it:
   - target not checked out anywhere: the branch ref is moved to the merge commit, only if
     it still points where it did (compare-and-swap; nobody's work is overwritten);
   - target checked out in a working tree (usually `main` in your own checkout): cpo does not
     touch that tree unless `--allow-checkout-merge` is given and the tree is clean (cpo's
     own outputs aside, cpo.run.changes); then it fast-forwards it to the
     validated merge commit. Otherwise it prints the exact git command to run there.
A conflict, a failed setup or a failed validation leaves the target untouched, and so does
Ctrl-C while they run (it stops their commands, as under `cpo run`). Every outcome is
written to `integration-report.md` in the parallel directory.
"""

from __future__ import annotations

import contextlib
import shlex
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cpo.commands.integratecheck import (
    SetupFailure,
    WaveCheck,
    check_merge,
    conditions,
    watched,
)
from cpo.duration import format_duration
from cpo.errors import CpoError, ExitCode, GitError, PreflightError, UsageError
from cpo.git import Git, find_repo
from cpo.gitenv import identity_problem
from cpo.logfile import use_log_file
from cpo.run.changes import user_changes
from cpo.run.journal import atomic_write
from cpo.run.layout import merge_worktree
from cpo.run.nextstep import cpo_command
from cpo.run.repair import repair_lines
from cpo.run.report import Report, now_iso, status_words
from cpo.run.scopecheck import scope_lines

INTEGRATION_REPORT = "integration-report.md"

Outcome = Literal[
    "merged",
    "already_merged",
    "manual",
    "conflict",
    "setup_failed",
    "validation_failed",
    "interrupted",
]


class NotReadyError(CpoError):
    """The run is not in a state worth merging (failed tasks, a dirty checkout)."""

    exit_code = ExitCode.FAILED


@dataclass(frozen=True)
class IntegrateOptions:
    into: str | None = None
    validate: bool = True
    force: bool = False
    allow_checkout_merge: bool = False


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
    setup_failure: SetupFailure | None = None
    next_step: str | None = None  # what to do about a failure, ending with the command
    again: str = ""  # the command that integrates again
    validated: bool = False
    report_path: Path | None = None

    @property
    def exit_code(self) -> ExitCode:
        if self.outcome == "interrupted":
            return ExitCode.INTERRUPTED
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
    # The run's log (as cpo.run.engine's): e.g. a Ctrl-C's note goes there, not on screen.
    use_log_file(parallel_dir / "logs" / "cpo.log")
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
    result = IntegrateResult("merged", target, integ, before, again=_again(parallel_dir, opts))
    if git.is_ancestor(integ, before):
        result.outcome = "already_merged"
        result.report_path = write_report(parallel_dir, report, git, result)
        return result
    # Read before anything is merged: a spec that does not load stops here.
    cond = conditions(report, parallel_dir, git, repo) if opts.validate else None

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

    with _temporary_worktree(git, merge_worktree(report, repo), before) as tmp:
        merged = git.merge(tmp, integ, _message(report, integ, target))
        if not merged.ok:
            result.outcome = "conflict"
            result.conflict_files = list(merged.conflict_files)
        else:
            result.merge_commit = merged.commit
            if cond is not None:
                stop = threading.Event()
                with watched(stop) as registry:
                    checked = check_merge(report, parallel_dir, tmp, cond, registry)
                if stop.is_set():  # whatever the commands said: they were stopped
                    result.outcome = "interrupted"
                    result.checks = (
                        [c for c in checked if c.ok] if isinstance(checked, list) else []
                    )
                elif isinstance(checked, SetupFailure):
                    result.outcome, result.setup_failure = "setup_failed", checked
                    result.next_step = _setup_next_step(checked, result.again)
                else:
                    result.checks, result.validated = checked, True
                    if not all(c.ok for c in checked):
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


def _again(parallel_dir: Path, opts: IntegrateOptions) -> str:
    flags = ["--into", shlex.quote(opts.into)] if opts.into else []
    return cpo_command("integrate", parallel_dir, *flags, *(["--force"] if opts.force else []))


def _setup_next_step(failure: SetupFailure, again: str) -> str:
    return (
        f"fix the setup command that failed (the manifest's setup, or config worktree.setup) "
        f"or what it needs in your checkout (see {failure.log}), then: {again}"
    )


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
        "setup_failed": "not merged: the merge result could not be made ready to validate "
        f"({result.setup_failure.error if result.setup_failure else '-'}); "
        f"{target} is untouched",
        "validation_failed": "not merged: validation failed on the merge result"
        + "".join(
            f" (wave {c.wave} timed out after {format_duration(c.timed_out_after)})"
            for c in result.checks
            if c.timed_out_after is not None
        )
        + f"; {target} is untouched",
        "interrupted": "not merged: interrupted while validating the merge result; "
        f"{target} is untouched; to integrate, run again: {result.again}",
    }[result.outcome]


def check_words(check: WaveCheck) -> str:
    """A wave's verdict: `passed`, `failed (exit 1)`, `timed out after 20m (config …)`."""
    if check.ok:
        return "passed"
    if check.timed_out_after is not None:
        return f"timed out after {format_duration(check.timed_out_after)} (config timeouts.task)"
    return f"failed (exit {check.exit_code})"


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
    if result.next_step:
        lines.append(f"- Next: {result.next_step}")
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
    elif result.outcome == "interrupted":
        lines.append("interrupted: its commands were stopped")
        lines += [f"- wave {c.wave}: passed in {c.duration:.1f} s" for c in result.checks]
    elif result.setup_failure is not None:
        lines += _setup_lines(result.setup_failure)
    elif not result.validated:
        lines.append("skipped (--no-validate)")
    elif not result.checks:
        lines.append("no wave has validation commands")
    else:
        for c in result.checks:
            verdict = check_words(c)
            if not c.ok:
                timed_out = c.timed_out_after is not None
                verdict = f"FAILED: {verdict}" if timed_out else f"FAILED (exit {c.exit_code})"
            lines.append(f"- wave {c.wave}: {verdict} in {c.duration:.1f} s")
            lines += [f"  - `{_first_line(cmd)}`" for cmd in c.commands]
            if not c.ok and c.output_tail.strip():
                lines += ["", "```", c.output_tail.rstrip(), "```", ""]
    if result.conflict_files:
        lines += ["", "## Conflicts", ""] + [f"- `{f}`" for f in result.conflict_files]
    for title, notes in (("Repairs", repair_lines(report)), ("Out of scope", scope_lines(report))):
        lines += ["", f"## {title}", "", *(f"- {n}" for n in notes)] if notes else []
    return lines


def _setup_lines(failure: SetupFailure) -> list[str]:
    """Why nothing was validated: what failed, its log, what to do."""
    lines = [
        "not run: readying the merge result as `cpo run` readies its integration worktree "
        f"failed: {failure.error}",
        f"- Log: `{failure.log}`",
    ]
    if failure.output_tail.strip():
        lines += ["", "```", failure.output_tail.rstrip(), "```", ""]
    lines.append(
        "- What to do: fix the setup command (the manifest's `setup`, or config "
        "`worktree.setup`) or what it needs in your checkout (a `.worktreeinclude` file, a "
        "shared folder), then run `cpo integrate` again; or land the merge unvalidated "
        "with `cpo integrate --no-validate`."
    )
    return lines


def _first_line(command: str) -> str:
    text = command.strip().splitlines()
    return (text[0] + (" …" if len(text) > 1 else "")) if text else ""
