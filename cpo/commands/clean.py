"""`cpo clean`: remove a run's worktrees and the branches whose work is already merged.

Nothing that holds work is lost without `--force`: a branch whose head is not in the
integration branch (or in the base branch, once the integration branch is gone) is kept,
with its worktree; a worktree with uncommitted changes is kept. The base branch and the
user's own working tree are never touched. The integration branch is the run's product:
it stays until it is merged into the base branch. Workers' attempt branches go by the
same rule (cpo.commands.cleanworker).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cpo.commands.cleanworker import WorkerRef, delete_worker_ref, plan_worker_refs
from cpo.errors import ExitCode, GitError, UsageError
from cpo.git import MARKER, Git, find_repo
from cpo.run.layout import merge_worktree
from cpo.run.nextstep import cpo_command
from cpo.run.report import Report

Kind = Literal["remove_worktree", "prune_worktree", "delete_branch", "delete_worker_ref"]


@dataclass(frozen=True)
class Action:
    kind: Kind
    target: str  # a worktree path or a branch name
    why: str
    force: bool = False  # `git worktree remove --force`: what it drops was checked first
    worker: WorkerRef | None = None  # for delete_worker_ref (cpo.commands.cleanworker)


@dataclass
class CleanPlan:
    repo: Path
    force: bool
    actions: list[Action] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # what would lose work, and why
    kept: list[str] = field(default_factory=list)  # left on purpose (not a refusal)
    notes: list[str] = field(default_factory=list)
    # `<workspace root>/<spec>`: removed too once its worktrees are gone and it is empty.
    spec_dir: Path | None = None
    worker_url: str | None = None  # the git remote of the run's workers, if any

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.FAILED if self.refused else ExitCode.OK


@dataclass
class _Unit:
    """One task (or the integration branch): a worktree and the branches that go with it."""

    name: str
    worktree: Path | None
    branches: list[str]


def plan_clean(parallel_dir: Path, *, force: bool = False) -> CleanPlan:
    """Decide what to remove; change nothing."""
    from cpo.commands.status import STAND_IN, finished_report

    parallel_dir = parallel_dir.resolve()
    report = finished_report(
        parallel_dir,
        no_run=f"no run in {parallel_dir}: nothing to clean",
        wait_hint="wait for the run to end, or stop it with Ctrl-C, before cleaning",
        from_plan=True,
    )
    repo = Path(report.repository) if report.repository else find_repo(parallel_dir)
    plan = _plan(Git(repo), report, force)
    if report.error == STAND_IN:
        if not (plan.actions or plan.refused):
            raise UsageError(f"no run in {parallel_dir}: nothing to clean")
        plan.notes.append(f"{STAND_IN}: branches and worktrees a run of it would make")
    return plan


def _plan(git: Git, report: Report, force: bool) -> CleanPlan:
    planner = _Planner(git, report, force)
    for task_id in report.tasks:
        planner.task(_task_unit(git, report, task_id))
    planner.integration()
    # `cpo integrate`'s temporary worktree, when a kill left it: judged like any other (its
    # HEAD, detached, is the target's head or the merge made there, which it re-makes).
    planner.worktree(merge_worktree(report, git.root).resolve(), [])
    planner.worker_refs()
    if report.workspace_root:
        planner.plan.spec_dir = Path(report.workspace_root) / report.spec_id
    return planner.plan


class _Planner:
    """Decides, one worktree and branch at a time, what `cpo clean` removes."""

    def __init__(self, git: Git, report: Report, force: bool) -> None:
        self.git, self.report, self.force = git, report, force
        self.plan = CleanPlan(repo=git.root, force=force)
        self.registered = git.worktrees()
        self.main = git.main_worktree()
        self.protected = {b for b in (report.base_branch, self.registered.get(self.main)) if b}
        integ = report.integration_branch
        self.integ_alive = bool(integ) and git.branch_exists(integ or "")
        # Where a branch's work must already be for the branch to go.
        self.reference: str | None = None
        if self.integ_alive:
            self.reference = integ
        elif report.base_branch and git.branch_exists(report.base_branch):
            self.reference = report.base_branch
        self.removed: set[Path] = set()
        self.seen: set[str | Path | None] = set()

    def task(self, unit: _Unit) -> None:
        # The tasks of a plan file's stream share a worktree and a branch: each once.
        branches = [b for b in unit.branches if b not in self.seen]
        unmerged = [b for b in branches if not _merged(self.git, b, self.reference)]
        if unit.worktree not in self.seen:
            self.worktree(unit.worktree, unmerged)
        for branch in branches:
            self.task_branch(branch, unit.worktree, branch in unmerged)
        self.seen.update([*branches, unit.worktree])

    def worktree(self, path: Path | None, unmerged: list[str]) -> None:
        plan = self.plan
        if path is None or path not in self.registered or path == self.main:
            return
        if not path.exists():
            plan.actions.append(Action("prune_worktree", str(path), "its folder is gone"))
            self.removed.add(path)
            return
        try:
            look = _look_at(self.git, path)
        except GitError as exc:
            # One broken worktree (say, an agent deleted its .git file) must not stop the
            # others from being cleaned; what it holds cannot be checked, so it stays.
            plan.refused.append(
                f"worktree {path}: git cannot read it ({exc.message}); save what you need "
                "from it, then remove the folder and run git worktree prune"
            )
            return
        problems = []
        if look.dirty:
            problems.append(f"has uncommitted changes ({_shown(look.dirty)})")
        holder = self.registered.get(path)
        if holder in unmerged:
            problems.append(f"its branch {holder} holds unmerged commits")
        if not look.head_in_a_ref:
            # A detached HEAD, or a branch the agent deleted: removing the worktree would
            # leave these commits reachable from nothing.
            problems.append(f"its HEAD {look.head[:12]} is on no branch or tag")
        if problems and not self.force:
            plan.refused.append(f"worktree {path}: {'; '.join(problems)}")
            return
        why = "clean" if not problems else "--force: " + "; ".join(problems)
        if look.debris:
            why += f"; build debris removed: {_shown(look.debris)}"
        if look.ignored:
            why += f"; ignored files removed: {_shown(look.ignored)}"
        forced = bool(problems or look.debris or look.never_checked_out)
        plan.actions.append(Action("remove_worktree", str(path), why, forced))
        self.removed.add(path)

    def checked_out_elsewhere(self, branch: str) -> Path | None:
        for path, b in self.registered.items():
            if b == branch and path not in self.removed:
                return path
        return None

    def task_branch(self, branch: str, own_worktree: Path | None, unmerged: bool) -> None:
        plan = self.plan
        if branch in self.protected:
            plan.kept.append(f"branch {branch}: the base branch or the user's; never touched")
            return
        where = self.checked_out_elsewhere(branch)
        if where is not None and where != own_worktree:
            plan.kept.append(f"branch {branch}: checked out in {where}, not by this run")
        elif unmerged:
            ahead = _ahead(self.git, branch, self.reference)
            if not self.force or where is not None:
                into = self.reference or "any branch"
                plan.refused.append(f"branch {branch}: {ahead} not merged into {into}")
            else:
                plan.actions.append(Action("delete_branch", branch, f"--force: {ahead} dropped"))
        elif where is not None:
            plan.kept.append(f"branch {branch}: kept with its worktree {where}")
        else:
            plan.actions.append(Action("delete_branch", branch, f"merged into {self.reference}"))

    def integration(self) -> None:
        """The integration worktree goes (its branch keeps everything); the branch stays
        until it is merged into the base branch."""
        report, plan = self.report, self.plan
        if report.integration_worktree:
            self.worktree(Path(report.integration_worktree).resolve(), [])
        integ, base = report.integration_branch, report.base_branch
        if not integ or not self.integ_alive:
            return
        merged = bool(base) and self.git.branch_exists(base or "")
        merged = merged and self.git.is_ancestor(integ, base or "")
        where = self.checked_out_elsewhere(integ)
        if integ in self.protected:
            plan.kept.append(f"branch {integ}: checked out in {self.main}")
        elif where is not None:
            plan.kept.append(f"branch {integ}: checked out in {where}")
        elif merged:
            plan.actions.append(Action("delete_branch", integ, f"merged into {base}"))
        elif self.force:
            plan.actions.append(Action("delete_branch", integ, f"--force: not merged into {base}"))
        else:
            plan.kept.append(
                f"branch {integ}: not merged into {base} yet "
                f"({cpo_command('integrate', report.parallel_dir)}, or "
                f"{cpo_command('clean', report.parallel_dir, '--force')} to drop it)"
            )

    def worker_refs(self) -> None:
        """The attempt branches of workers, on the remote and fetched here."""
        found = plan_worker_refs(self.git, self.report, self.reference, self.force)
        self.plan.worker_url = found.url
        for ref, why in found.delete:
            label = ref.label(found.url or "")
            self.plan.actions.append(Action("delete_worker_ref", label, why, worker=ref))
        self.plan.refused.extend(found.refused)
        self.plan.kept.extend(found.kept)


def _task_unit(git: Git, report: Report, task_id: str) -> _Unit:
    rec = report.tasks[task_id]
    branches: list[str] = []
    if rec.branch and git.branch_exists(rec.branch):
        branches.append(rec.branch)
    # Attempt branches keep an earlier attempt's work (saved before a reset, or kept when the
    # agent's HEAD could not go onto the task branch); only those the report says cpo made
    # are touched (a user's `feature/x-attempt-mine` is theirs).
    for attempt in rec.attempts:
        for kept in (attempt.saved_branch, attempt.kept_branch):
            if kept and kept not in branches and git.branch_exists(kept):
                branches.append(kept)
    worktree = Path(rec.worktree).resolve() if rec.worktree else None
    return _Unit(task_id, worktree, branches)


# Files a validation or a test run leaves behind that hold no work: a worktree holding only
# these (besides committed work) is removed without asking.
_DEBRIS = ("__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis")
_DEBRIS_SUFFIXES = (".pyc", ".pyo")


def _is_debris(path: str) -> bool:
    parts = path.rstrip("/").split("/")
    return any(p in _DEBRIS for p in parts) or parts[-1].endswith(_DEBRIS_SUFFIXES)


@dataclass(frozen=True)
class _Look:
    """What removing a worktree would drop."""

    head: str
    head_in_a_ref: bool
    dirty: list[str]  # changes and untracked files that are not debris
    debris: list[str]
    ignored: list[str]  # ignored files (not debris): deleted with the folder, so named
    # git would call such a worktree modified (it has no index): only --force removes it
    never_checked_out: bool = False


def _look_at(git: Git, path: Path) -> _Look:
    head = git.run("rev-parse", "HEAD", cwd=path)
    if not git.checked_out(path):
        # Made for a task that never started (a run killed before it): nothing in it.
        return _Look(head, git.contained_in_a_ref(head), [], [], [], never_checked_out=True)
    changed = git.dirty_paths(path)
    # The completion marker is cpo's own (excluded through info/exclude): not the user's.
    ignored = [p for p in git.ignored_paths(path) if p != MARKER]
    return _Look(
        head=head,
        head_in_a_ref=git.contained_in_a_ref(head),
        dirty=[p for p in changed if not _is_debris(p)],
        debris=[p for p in changed + ignored if _is_debris(p)],
        ignored=[p for p in ignored if not _is_debris(p)],
    )


def _shown(paths: list[str]) -> str:
    return ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")


def _merged(git: Git, branch: str, reference: str | None) -> bool:
    head = git.rev(f"refs/heads/{branch}")
    return head is not None and reference is not None and git.is_ancestor(head, reference)


def _ahead(git: Git, branch: str, reference: str | None) -> str:
    if reference is None:
        return "its commits are"
    n = git.commits_between(reference, f"refs/heads/{branch}")
    return f"{n} commit{'s' if n != 1 else ''} {'is' if n == 1 else 'are'}"


def apply_clean(plan: CleanPlan) -> list[str]:
    """Carry out the plan's actions, worktrees first; return one line per thing done."""
    git = Git(plan.repo)
    done: list[str] = []
    if any(a.kind == "prune_worktree" for a in plan.actions):
        git.prune_worktrees()
    for action in plan.actions:
        if action.kind == "remove_worktree":
            git.remove_worktree(Path(action.target), force=action.force)
            done.append(f"removed worktree {action.target} ({action.why})")
        elif action.kind == "prune_worktree":
            done.append(f"pruned worktree {action.target} ({action.why})")
    if plan.spec_dir is not None:
        with contextlib.suppress(OSError):  # not empty (or gone): it stays as it is
            plan.spec_dir.rmdir()
    for action in plan.actions:
        if action.kind == "delete_branch":
            git.delete_branch(action.target, force=True)
            done.append(f"deleted branch {action.target} ({action.why})")
        elif action.kind == "delete_worker_ref" and action.worker is not None:
            delete_worker_ref(git, plan.worker_url, action.worker)
            done.append(f"deleted worker branch {action.target} ({action.why})")
    return done


def clean_lines(plan: CleanPlan, done: list[str] | None) -> list[str]:
    """What was done (or, for --dry-run with `done` None, would be), kept and refused."""
    lines = [f"note: {n}" for n in plan.notes]
    if done is None:
        lines += [f"would {_verb(a)} {a.target} ({a.why})" for a in plan.actions]
        if not plan.actions:
            lines.append("nothing to remove")
    else:
        lines += done or ["nothing to remove"]
    lines += [f"kept {k}" for k in plan.kept]
    lines += [f"refused {r}" for r in plan.refused]
    if plan.refused:
        lines.append(
            f"{len(plan.refused)} refused: merge or save that work, or cpo clean --force to "
            "remove it anyway (unmerged commits and uncommitted changes are then lost)"
        )
    if done is None:
        lines.append("dry run: nothing was changed")
    return lines


def _verb(action: Action) -> str:
    return {
        "remove_worktree": "remove worktree",
        "prune_worktree": "prune worktree",
        "delete_branch": "delete branch",
        "delete_worker_ref": "delete worker branch",
    }[action.kind]
