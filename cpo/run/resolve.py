"""`--on-conflict resolve`: an agent concludes a conflicted merge in the integration
worktree, and cpo checks what it left before the run goes on.

The agent gets the conflicting files and, for both sides, each task's prompt and the
summary of its completion marker; it must leave no conflict markers and commit the merge.
cpo accepts the result only when git says so: no merge in progress (MERGE_HEAD committed,
so no unmerged paths), the integration worktree still on its branch, its head holding
both the integration head the merge started from and the task's head, no `<<<<<<<` or
`>>>>>>>` line in the conflicted files as committed, no uncommitted change to a tracked
file. Otherwise the merge is undone (aborted, or the branch put back where it was, with any
commits the agent made kept on `<task branch>-resolution-N`) and the task fails as
`conflict`, as with `--on-conflict stop`.

The agent runs with the task's own backend and settings, on the scheduler's thread while
no other merge can happen, in an agent slot taken ahead of every waiting task, as a repair
agent's is (cpo.run.repair): it counts toward --max-concurrent.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from cpo.git import MARKER, Git
from cpo.plan.model import TaskSpec
from cpo.run.agentrun import TaskSettings
from cpo.run.report import TaskRecord
from cpo.run.slots import Slots
from cpo.run.tasklog import AgentRun

# A conflict marker line as git writes it (the `=======` line alone is common in text).
CONFLICT_LINE = re.compile(r"^(?:<{7}|>{7})(?: |$)", re.MULTILINE)

RESOLVER_PROTOCOL = """\
You are resolving a git merge conflict for an orchestrator that runs several coding agents
in parallel and merges their branches. The current directory is the integration worktree,
in the middle of a `git merge` that stopped with conflicts. Work only inside it:
1. Edit each conflicted file so that it keeps the intent of both sides, and remove every
   conflict marker (<<<<<<<, =======, >>>>>>>).
2. Conclude the merge: git add the files, then git commit --no-edit.
   Do not run git merge --abort, reset, rebase, checkout, switch or stash (the stash is
   shared with other worktrees), and do not push.
The orchestrator checks the result with git; anything left unmerged is undone.
"""


@dataclass(frozen=True)
class Resolution:
    """What a resolver came to: the merge commit, or the problem (and a kept branch)."""

    commit: str | None
    problem: str | None = None
    kept_branch: str | None = None
    session_id: str | None = None
    cost_usd: float | None = None
    duration: float | None = None


@dataclass(frozen=True)
class Resolver:
    git: Git
    worktree: Path  # the integration worktree
    branch: str  # the integration branch
    agents: AgentRun
    env: dict[str, str]
    settings_for: Callable[[TaskSpec], TaskSettings]
    slots: Slots

    def resolve(
        self,
        task: TaskSpec,
        files: list[str],
        before: str,
        sides: list[tuple[TaskSpec, TaskRecord]],
        theirs: str | None = None,
    ) -> Resolution:
        """Run the resolver on the merge of `task` left in progress; accept its commit or
        undo the merge. `before`: the integration head the merge started from; `theirs`:
        what was merged, when not the task's branch (a plan file's stream)."""
        task_head = theirs or self.git.rev(f"refs/heads/{task.branch}") or ""
        prompt = resolver_prompt(task, files, self.branch, sides, theirs)
        resolver = replace(task, prompt=prompt, prompt_source="cpo: merge conflict resolution")
        attempt = len(sides[-1][1].attempts) if sides else 1
        started = time.monotonic()
        if not self.slots.acquire(self.slots.ticket(-1)):  # ahead of every waiting task
            kept = self._undo(task, before)  # launches were stopped (interrupt, auth...)
            return Resolution(None, "the resolver was not started: the run is stopping", kept)
        try:
            result = self.agents.run(
                resolver,
                self.settings_for(task),
                self.worktree,
                attempt,
                {**self.env, "CPO_TASK_ID": task.id, "CPO_RESOLVING": "1"},
                system_prompt=RESOLVER_PROTOCOL,
            )
        finally:
            self.slots.release()
        (self.worktree / MARKER).unlink(missing_ok=True)  # never merged; nothing to judge
        o, took = result.outcome, round(time.monotonic() - started, 3)
        if result.reason == "interrupted":
            problem: str | None = "the resolver was stopped"
        else:
            problem = check_resolution(
                self.git, self.worktree, self.branch, before, task_head, files
            )
        if problem is None:
            commit = self.git.rev("HEAD", cwd=self.worktree)
            return Resolution(commit, None, None, o.session_id, o.cost_usd, took)
        kept = self._undo(task, before)
        return Resolution(None, problem, kept, o.session_id, o.cost_usd, took)

    def _undo(self, task: TaskSpec, before: str) -> str | None:
        """The integration worktree back at `before`, on its branch, with no merge in
        progress; commits the resolver made there are kept on a branch (its name)."""
        git, wt = self.git, self.worktree
        with git.lock:
            if git.ok("rev-parse", "-q", "--verify", "MERGE_HEAD", cwd=wt):
                git.run("merge", "--abort", cwd=wt, check=False)
            head, on = git.worktree_head(wt)
            work = git.rev(f"refs/heads/{self.branch}") if on == self.branch else head
            kept = None
            # Commits on another branch stay there; on a detached HEAD or the integration
            # branch the reset below would leave them on no branch.
            mine = on in (None, self.branch)
            if mine and work and work != before and not git.is_ancestor(work, before):
                kept = _free_name(git, f"{task.branch}-resolution")
                git.create_branch(kept, work)
            if on != self.branch:
                git.attach_worktree(wt, self.branch, checkout=False)
            git.run("reset", "-q", "--hard", before, cwd=wt)
        return kept


def check_resolution(
    git: Git, worktree: Path, branch: str, before: str, task_head: str, files: list[str]
) -> str | None:
    """Why what a resolver left is not a resolved merge, or None when it is."""
    if git.ok("rev-parse", "-q", "--verify", "MERGE_HEAD", cwd=worktree):
        out = git.run("diff", "--name-only", "--diff-filter=U", cwd=worktree, check=False)
        unmerged = [f for f in out.splitlines() if f]
        return "the merge was not committed" + (
            f" ({', '.join(unmerged)} still unmerged)" if unmerged else ""
        )
    head, on = git.worktree_head(worktree)
    if on != branch:
        return f"the integration worktree was left off {branch} (on {on or 'a detached HEAD'})"
    if not (git.is_ancestor(before, head) and git.is_ancestor(task_head, head)):
        return "the merge was not committed (HEAD does not hold both sides)"
    marked = markers_left(git, head, files)
    if marked:
        return f"conflict markers committed in {', '.join(marked)}"
    changed = git.run("diff", "--name-only", "HEAD", cwd=worktree)
    if changed:
        return f"uncommitted changes left in {', '.join(changed.splitlines())}"
    return None


def markers_left(git: Git, rev: str, files: list[str]) -> list[str]:
    """Which of `files` hold a conflict marker line as committed in `rev`."""
    return [f for f in files if CONFLICT_LINE.search(git.file_at(rev, f) or "")]


def resolver_prompt(
    task: TaskSpec,
    files: list[str],
    branch: str,
    sides: list[tuple[TaskSpec, TaskRecord]],
    theirs: str | None = None,
) -> str:
    """The resolver's prompt: the conflict, then what each side's task was asked to do
    and what its agent said it did. `theirs`: the commit merged, when not the task's
    branch (a plan file's stream, whose branch may hold a failed task's work after it):
    the prompt names exactly what was merged."""
    if theirs:
        what = (
            f"`git merge {theirs}` into {branch} (the work of task {task.id}: its branch "
            f"{task.branch} up to that commit)"
        )
    else:
        what = f"`git merge {task.branch}` into {branch} (task {task.id})"
    parts = [
        f"{what} stopped with conflicts in:",
        *(f"- {f}" for f in files),
        "",
        "Resolve them so that the result does what every task below asked for, then commit "
        "the merge. For context only (do not redo the tasks), what each side was asked "
        "to do and what its agent reported:",
    ]
    for spec, rec in sides:
        state = "being merged" if spec.id == task.id else "already merged"
        upto = f" up to {theirs}" if theirs and spec.id == task.id else ""
        summary = (rec.marker or {}).get("summary") or "(no summary)"
        parts += [
            "",
            f"=== TASK {spec.id} ({state}; branch {spec.branch}{upto}) ===",
            spec.prompt.strip(),
            f"--- its agent's summary: {summary}",
            f"--- files it changed: {', '.join(rec.files_changed) or '(none recorded)'}",
        ]
    return "\n".join(parts) + "\n"


def _free_name(git: Git, base: str) -> str:
    n = 1
    while git.branch_exists(f"{base}-{n}"):
        n += 1
    return f"{base}-{n}"
