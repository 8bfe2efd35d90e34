"""Local changes: which of a working tree's changes are the user's, and which are cpo's own.

cpo's own outputs never count as local changes, for this spec or any other: in
any parallel directory its `report.json`, `logs/`, `.cpo.lock`, `integration-report.md` (and
the temporary files they are written through), the `scripts/` of `--generate-only`, the
manifest's `execution` block; and the worktrees of a workspace root inside the repository.
Two specs run at once in one repository: neither may take the other's report for the
user's work.

The other question asked here: which files of a parallel directory are not committed, so
that the agents, whose worktrees hold only committed files, would not see them.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

from cpo.errors import PreflightError, Problem
from cpo.git import Git, find_repo
from cpo.plan.model import Plan
from cpo.planfile.paths import is_plan_file

MANIFEST = "manifest.json"
# What `cpo run` and `cpo integrate` write in a parallel directory (cpo.run.report,
# cpo.run.lock, cpo.commands.integrate), and the temporary files atomic_write renames.
_OUTPUTS = ("report.json", "report.journal", ".cpo.lock", "integration-report.md")
_TEMPORARY = re.compile(
    r"\.(report\.json|report\.journal|manifest\.json|integration-report\.md)\.[0-9a-f]{12}"
)
# What `cpo run --generate-only` writes in `scripts/` (cpo.run.scripts): it only calls cpo.
_SCRIPTS = ("run-parallel.sh", "monitor-live.sh")
# Preflight's write test of a workspace root (cpo.run.preflight), wherever that root is.
PROBE_PREFIX = ".cpo-write-test-"
_PROBE = re.compile(re.escape(PROBE_PREFIX) + r"\d+")


def is_parallel_dir(path: Path) -> bool:
    """A parallel directory, or the folder where a plan file's run writes (`PLAN.cpo`)."""
    if (path / MANIFEST).is_file() or (path / "tasks").is_dir():
        return True
    return path.suffix == ".cpo" and path.with_suffix(".md").is_file()


def _only_status_changed(git: Git, where: Path, rel: PurePosixPath) -> bool:
    """A plan file whose only changes since HEAD are the statuses and dates cpo writes."""
    if not is_plan_file(where / rel):
        return False
    try:
        now = (where / rel).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    before = git.file_at("HEAD", str(rel), where)
    from cpo.planfile.edit import without_statuses  # only for a changed plan file

    return before is not None and without_statuses(before) == without_statuses(now)


def _is_output_file(rel: PurePosixPath, where: Path) -> bool:
    """A file cpo writes, in a parallel directory (by name and place alone)."""
    if _PROBE.fullmatch(rel.name):
        return True
    if (rel.name in _OUTPUTS or _TEMPORARY.fullmatch(rel.name)) and is_parallel_dir(
        where / rel.parent
    ):
        return True
    if rel.parent.name == "scripts" and rel.name in _SCRIPTS:
        return is_parallel_dir(where / rel.parent.parent)
    return any(p.name == "logs" and is_parallel_dir(where / p.parent) for p in rel.parents)


def _without_execution(text: str | None) -> Any:
    try:
        data = json.loads(text) if text is not None else None
    except ValueError:
        return None
    if isinstance(data, dict):
        data.pop("execution", None)
    return data


def _only_execution_changed(git: Git, where: Path, rel: PurePosixPath) -> bool:
    """A manifest whose only change since HEAD is the `execution` block cpo writes."""
    if rel.name != MANIFEST:
        return False
    try:
        now = (where / rel).read_text(encoding="utf-8")
    except OSError:
        return False
    before = _without_execution(git.file_at("HEAD", str(rel), where))
    return before is not None and before == _without_execution(now)


def user_changes(git: Git, where: Path | None = None) -> list[str]:
    """The changes in a working tree (default: the repository's) that are not cpo's own."""
    where = (where or git.root).resolve()
    worktrees = [p for p in git.worktrees() if p != where]
    result = []
    for status, path in git.status_entries(where):
        rel = PurePosixPath(path.rstrip("/"))
        full = (where / rel).resolve()
        if any(full == w or w in full.parents for w in worktrees):
            continue  # a worktree under a workspace root inside the repository
        if _is_output_file(rel, where):
            continue
        if status.strip() == "M" and (
            _only_execution_changed(git, where, rel) or _only_status_changed(git, where, rel)
        ):
            continue
        result.append(path)
    return result


def uncommitted_plan_files(git: Git, parallel_dir: Path) -> list[str]:
    """Files of a parallel directory (paths relative to it) that are not committed as they
    are, untracked or modified, cpo's outputs aside: agents' worktrees would not have them."""
    root = git.root.resolve()
    try:
        inside = PurePosixPath(parallel_dir.resolve().relative_to(root).as_posix())
    except ValueError:
        return []  # outside the repository: nothing of it is in any worktree anyway
    result = []
    for path in user_changes(git, root):
        rel = PurePosixPath(path.rstrip("/"))
        if inside in rel.parents:
            result.append(str(rel.relative_to(inside)) + ("/" if path.endswith("/") else ""))
    return result


def plan_inputs(plan: Plan) -> set[str]:
    """The files cpo itself reads (relative to the parallel directory): the manifest, task
    files and prompt files. Agents get their prompt from cpo, so these reach them as they
    are now, committed or not."""
    files = {MANIFEST}
    for task in plan.tasks.values():
        files.update(f for f in (task.task_file, task.prompt_source) if f)
    return files


def uncommitted_lines(plan: Plan, repo: Path, files: list[str]) -> tuple[list[str], list[str]]:
    """What to say about a plan's uncommitted files: (what agents would miss, for the run to
    refuse; what cpo reads as it is, worth a note since worktrees hold the committed copy)."""
    inputs = plan_inputs(plan)
    missed = [f for f in files if f not in inputs]
    read = [f for f in files if f in inputs]
    hint = commit_hint(plan.root, repo)
    name = plan.root.name
    return (
        [
            f"{name} has files that are not committed ({shown(missed)}): agents work in "
            f"worktrees made from commits and would not see them; commit them: {hint}"
        ]
        if missed
        else [],
        [
            f"{name}: {shown(read)} not committed: cpo reads them as they are, but agents' "
            f"worktrees hold the committed copies; commit them: {hint}"
        ]
        if read
        else [],
    )


def with_commit_warnings(plan: Plan) -> Plan:
    """The plan with warnings naming its uncommitted files (`cpo validate`)."""
    try:
        repo = find_repo(plan.root)
    except PreflightError:
        return plan  # not in a repository: `cpo run` says so
    missed, read = uncommitted_lines(plan, repo, uncommitted_plan_files(Git(repo), plan.root))
    warnings = [Problem(plan.root.name, "", line, severity="warning") for line in missed + read]
    return replace(plan, warnings=(*plan.warnings, *warnings)) if warnings else plan


def shown(paths: list[str], limit: int = 5) -> str:
    more = len(paths) - limit
    return ", ".join(paths[:limit]) + (f" and {more} more" if more > 0 else "")


def commit_hint(parallel_dir: Path, repo: Path) -> str:
    """The command that commits a parallel directory, paths quoted for the shell."""
    try:
        rel = parallel_dir.resolve().relative_to(repo.resolve())
    except ValueError:
        rel = parallel_dir
    message = f"plan {parallel_dir.name}"
    return f"git add {shlex.quote(str(rel))} && git commit -m {shlex.quote(message)}"
