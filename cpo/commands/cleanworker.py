"""`cpo clean` for a run whose attempts ran on workers (`--executor` other than local):
their attempt branches on the git remote (`cpo-worker/<spec>/<task>/attempt-<n>`) and the
copies fetched here (`refs/cpo-worker/...`, cpo.run.remote).

The same safety rule as for task branches (cpo.commands.clean): one goes only when its
head is merged into the integration branch (or the base branch once that is gone), or
is held by the task's own branch, which clean keeps or removes by that rule (a later
attempt's work built on it: superseded). A remote branch also goes when its fetched
copy here holds its head. Anything else is refused (`--force` drops it). A remote branch
whose head this repository does not have cannot be checked, so it is kept; its deletion
is a push with a lease on the head that was checked, so nothing pushed since is lost.
"""

from __future__ import annotations

from dataclasses import dataclass

from cpo.errors import GitError
from cpo.git import Git
from cpo.run.remote import FETCHED, remote_url
from cpo.run.report import Report


@dataclass(frozen=True)
class WorkerRef:
    """An attempt's branch on the remote (`remote` True) or its fetched copy here."""

    name: str  # the branch, `cpo-worker/<spec>/<task>/attempt-<n>`
    head: str
    remote: bool

    @property
    def ref(self) -> str:
        return f"refs/heads/{self.name}" if self.remote else f"{FETCHED}/{self.name}"

    def label(self, url: str) -> str:
        return f"{self.name} on {url}" if self.remote else self.ref


@dataclass
class WorkerClean:
    """What to do with one run's worker refs: delete (with why), refuse, keep."""

    url: str | None
    delete: list[tuple[WorkerRef, str]]
    refused: list[str]
    kept: list[str]


def plan_worker_refs(git: Git, report: Report, reference: str | None, force: bool) -> WorkerClean:
    """Decide what becomes of the run's worker refs; change nothing."""
    prefix = f"cpo-worker/{report.spec_id}/"
    tasks = set(report.tasks)
    local = [
        WorkerRef(ref.removeprefix(f"{FETCHED}/"), head, remote=False)
        for ref, head in _refs(git, "for-each-ref", "--format=%(refname) %(objectname)", FETCHED)
    ]
    url = _url(git, report)
    remote: list[WorkerRef] = []
    unread: list[str] = []
    if url is not None:
        try:
            found = _refs(git, "ls-remote", "--heads", url, f"refs/heads/{prefix}*")
        except GitError as exc:
            why = f"not checked, git cannot read it ({exc.message})"
            unread.append(f"worker branches on {url}: {why}")
            found = []
        remote = [WorkerRef(r.removeprefix("refs/heads/"), h, remote=True) for r, h in found]
    ours = [w for w in [*local, *remote] if _task_of(w.name, prefix) in tasks]
    fetched = {w.name: w.head for w in local}
    plan = WorkerClean(url, [], [], unread)
    for w in ours:
        removable = _why_removable(git, report, reference, w, fetched)
        where = w.label(url or "")
        if removable is not None:
            plan.delete.append((w, removable))
        elif w.remote and not git.ok("cat-file", "-e", f"{w.head}^{{commit}}"):
            plan.kept.append(f"worker branch {where}: its head {w.head[:12]} is not here")
        elif force:
            plan.delete.append((w, "--force: its commits not merged are dropped"))
        else:
            into = reference or "any branch"
            plan.refused.append(f"worker branch {where}: its head is not merged into {into}")
    return plan


def _why_removable(
    git: Git, report: Report, reference: str | None, w: WorkerRef, fetched: dict[str, str]
) -> str | None:
    """Why `w` can go without losing work, or None."""
    if not git.ok("cat-file", "-e", f"{w.head}^{{commit}}"):
        return None
    if reference is not None and git.is_ancestor(w.head, reference):
        return f"merged into {reference}"
    task = report.tasks[_task_of(w.name, f"cpo-worker/{report.spec_id}/") or ""]
    branch = task.branch
    if branch and git.rev(f"refs/heads/{branch}") and git.is_ancestor(w.head, branch):
        return f"held by the task's branch {branch}"
    if w.remote and fetched.get(w.name) == w.head:
        return f"fetched here as {FETCHED}/{w.name}"
    return None


def delete_worker_ref(git: Git, url: str | None, w: WorkerRef) -> None:
    """Delete `w`, only if it is still at the head that was checked."""
    if not w.remote:
        git.run("update-ref", "-d", w.ref, w.head)
        return
    assert url is not None
    git.run("push", "--quiet", f"--force-with-lease={w.ref}:{w.head}", url, f":{w.ref}")


def _refs(git: Git, *args: str) -> list[tuple[str, str]]:
    """(ref, head) of each line `git args` prints, as for-each-ref or ls-remote do."""
    pairs = []
    for line in git.run(*args).splitlines():
        first, _, second = line.partition(" " if " " in line else "\t")
        ref, head = (first, second) if first.startswith("refs/") else (second, first)
        pairs.append((ref.strip(), head.strip()))
    return pairs


def _task_of(name: str, prefix: str) -> str | None:
    """The task id in `cpo-worker/<spec>/<task>/attempt-<n>`, None if not this spec's."""
    if not name.startswith(prefix):
        return None
    task, _, attempt = name.removeprefix(prefix).rpartition("/")
    return task if attempt.startswith("attempt-") else None


def _url(git: Git, report: Report) -> str | None:
    """The git remote the run's workers used; None for a run on the local executor."""
    if report.options.get("executor", "local") == "local":
        return None
    return remote_url(git, str(report.options.get("remote") or "origin"))
