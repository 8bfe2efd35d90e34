"""Git: the repository, the integration branch, one worktree and branch per task, merges.

The only module that touches git: `Git` is the one class through which cpo runs it. Every
call goes through `Git.run` (its base, `cpo.gitrun.GitRunner`: the git binary, retried
when another git process holds a lock). Metadata operations (worktree add/remove, branch
creation, merges, commits by cpo) take `Git.lock`: with git 2.39, two concurrent
`git worktree add` in one repository fail now and then reading the other's `commondir`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from cpo.errors import GitError
from cpo.gitenv import agent_git_env as agent_git_env  # callers know it as cpo.git's
from cpo.gitmemo import remembered
from cpo.gitpaths import OID, add_exclude, head_from_files
from cpo.gitpaths import find_repo as find_repo  # callers know it as cpo.git's
from cpo.gitpaths import git_dir as git_dir  # callers know it as cpo.git's
from cpo.gitrun import GitRunner
from cpo.gitstatus import (
    History,
    WorktreeStatus,
    parse_history,
    parse_status_v2,
    status_v1_entries,
    worktree_list,
)
from cpo.indexlock import settle_checkout_lock
from cpo.mergeresult import MergeResult as MergeResult  # callers know it as cpo.git's
from cpo.mergeresult import merge_failure

MARKER = ".claude-task-complete"


class Git(GitRunner):
    """One repository; `lock` serialises the operations that change git metadata. Git
    itself runs through `GitRunner.run`, `ok` and `_raw` (cpo.gitrun)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.lock = threading.RLock()
        self._tracked: dict[tuple[str, str], bool] = {}  # (commit id, path): see `tracks`
        self._common_dir: Path | None = None

    # -- queries ----------------------------------------------------------------------
    def rev(self, ref: str, cwd: Path | None = None) -> str | None:
        """The commit `ref` names (in worktree `cwd` for HEAD), or None."""
        code, out, _ = self._raw(
            ["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd or self.root
        )
        return out.strip() if code == 0 else None

    def branch_exists(self, branch: str) -> bool:
        return self.rev(f"refs/heads/{branch}") is not None

    def is_ancestor(self, commit: str, of: str) -> bool:
        return self.ok("merge-base", "--is-ancestor", commit, of)

    def current_branch(self) -> str | None:
        code, out, _ = self._raw(["symbolic-ref", "--short", "-q", "HEAD"], self.root)
        return out.strip() if code == 0 and out.strip() else None

    @remembered
    def status_entries(self, cwd: Path | None = None) -> list[tuple[str, str]]:
        """(two-letter status, path) of every tracked change and untracked file in a
        worktree; paths relative to its root (a nested worktree shows as `dir/`)."""
        where = cwd or self.root
        # Not `run`: its strip() would eat the leading blank of a " M path" entry.
        code, out, err = self._raw(["status", "--porcelain", "-z", "--untracked-files=all"], where)
        if code != 0:
            raise GitError(f"git status failed in {where}: {err.strip()}")
        return status_v1_entries(out)

    def dirty_paths(self, cwd: Path | None = None, *, exclude: Sequence[Path] = ()) -> list[str]:
        """Tracked changes and untracked files, minus paths under `exclude` (absolute)."""
        where = cwd or self.root
        return [
            path
            for _, path in self.status_entries(where)
            if not any(
                ex == (where / path).resolve() or ex in (where / path).resolve().parents
                for ex in exclude
            )
        ]

    def file_at(self, rev: str, path: str, cwd: Path | None = None) -> str | None:
        """The text of `path` (relative to the worktree root) at `rev`, or None."""
        code, out, _ = self._raw(["show", f"{rev}:./{path}"], cwd or self.root)
        return out if code == 0 else None

    def ignored_paths(self, cwd: Path) -> list[str]:
        """Ignored files and folders in a worktree (`git status --ignored`, folders collapsed)."""
        out = self.run(
            "status", "--porcelain", "-z", "--ignored", "--untracked-files=normal", cwd=cwd
        )
        return [e[3:] for e in out.split("\0") if e.startswith("!! ")]

    def untracked_matching(self, patterns_file: Path | None, patterns: Sequence[str]) -> list[str]:
        """Untracked files, ignored or not, that gitignore-style patterns match (git's own
        matcher: `.worktreeinclude` reads exactly like `.gitignore`)."""
        excludes = [f"--exclude-from={patterns_file}"] if patterns_file else []
        excludes += [f"--exclude={p}" for p in patterns]
        if not excludes:
            return []
        out = self.run("ls-files", "-z", "--others", "--ignored", *excludes)
        return [p for p in out.split("\0") if p]

    def contained_in_a_ref(self, commit: str) -> bool:
        """Whether any branch, tag or other ref reaches `commit` (else it is only in a worktree)."""
        out = self.run("for-each-ref", "--count=1", "--contains", commit, "--format=%(refname)")
        return bool(out)

    @remembered
    def worktrees(self) -> dict[Path, str | None]:
        """Registered worktrees: path -> branch (None when detached)."""
        return worktree_list(self.run("worktree", "list", "--porcelain"))

    def worktree_head(self, worktree: Path) -> tuple[str, str | None]:
        """(HEAD commit, the branch HEAD is on, or None when detached) of a worktree."""
        # One process for both: the commit, then the full ref name ("HEAD" when detached).
        code, out, err = self._raw(
            ["rev-parse", "HEAD^{commit}", "--symbolic-full-name", "HEAD"], worktree
        )
        if code != 0 or len(out.split()) != 2:
            raise GitError(f"git rev-parse HEAD failed in {worktree}: {err.strip()}")
        head, ref = out.split()
        return head, ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None

    def tracks(self, rev: str, path: str, known: bool | None = None) -> bool:
        """Whether the tree of commit `rev` holds `path`; remembered when `rev` is a commit
        id, which never changes (every task of a wave asks about the same start point).
        `known`: the caller could tell (a checkout of `rev` it just made), no cat-file."""
        key = (rev, path)
        if known is not None and OID.fullmatch(rev):
            self._tracked[key] = known
        if key not in self._tracked:
            answer = self.ok("cat-file", "-e", f"{rev}:{path}")
            if not OID.fullmatch(rev):
                return answer
            self._tracked[key] = answer
        return self._tracked[key]

    def commits_between(self, start: str, end: str) -> int:
        return int(self.run("rev-list", "--count", f"{start}..{end}") or 0)

    def files_changed(self, start: str, end: str) -> list[str]:
        out = self.run("diff", "--name-only", start, end)
        return [line for line in out.splitlines() if line]

    def history(self, start: str, head: str) -> History:
        """`head` since `start`, and whether `head` contains `start`: one `git log`, each
        commit with its parents and followed by the files it touched (cpo.gitstatus)."""
        args = ("--format=%x00%H %P", "--name-only", "--no-renames", f"{start}..{head}")
        return parse_history(self.run("log", *args), start, head)

    def worktree_status(self, worktree: Path) -> WorktreeStatus:
        """What is uncommitted in a worktree, its HEAD and HEAD's branch: one `git status`."""
        args = ["status", "--porcelain=v2", "--branch", "--no-ahead-behind", "-z"]
        code, out, err = self._raw([*args, "--untracked-files=all"], worktree)
        if code != 0:
            raise GitError(f"git status failed in {worktree}: {err.strip()}")
        return parse_status_v2(out)

    def common_dir(self) -> Path:
        if self._common_dir is None:  # it never changes: asked once
            out = self.run("rev-parse", "--path-format=absolute", "--git-common-dir")
            self._common_dir = Path(out)
        return self._common_dir

    # -- used by status / clean / integrate -----------------------------------------------
    @remembered
    def local_branches(self) -> set[str]:
        """Every local branch name, in one git call (preflight checks hundreds)."""
        out = self.run("for-each-ref", "--format=%(refname)", "refs/heads/")
        return {line.removeprefix("refs/heads/") for line in out.splitlines() if line}

    def main_worktree(self) -> Path:
        """The repository's main working tree (the user's), whichever worktree we run in."""
        return next(iter(self.worktrees()))

    def log_oneline(self, start: str, end: str, limit: int = 200) -> list[str]:
        out = self.run("log", "--oneline", "--no-decorate", f"-{limit}", f"{start}..{end}")
        return [line for line in out.splitlines() if line]

    def merge_base(self, a: str, b: str) -> str | None:
        code, out, _ = self._raw(["merge-base", a, b], self.root)
        return out.strip() if code == 0 and out.strip() else None

    def merge_tree(self, ours: str, theirs: str) -> tuple[str, ...]:
        """Files a merge of `theirs` into `ours` would leave in conflict (none: it merges
        cleanly), by `git merge-tree --write-tree`: no worktree or index is touched."""
        args = ("merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", ours, theirs)
        code, out, err = self._raw(args, self.root)
        if code not in (0, 1):  # 1: conflicts; anything else: git could not tell
            raise GitError(f"git merge-tree {ours} {theirs} failed: {err.strip() or code}")
        return tuple(dict.fromkeys(p for p in out.split("\0")[1:] if p))

    def prune_worktrees(self) -> None:
        """Forget worktrees whose folder was deleted by hand."""
        with self.lock:
            self.run("worktree", "prune")

    def add_detached_worktree(self, path: Path, commit: str) -> None:
        with self.lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.run("worktree", "add", "-q", "--detach", str(path), commit)

    def update_branch(self, branch: str, new: str, old: str, why: str = "cpo integrate") -> None:
        """Move `branch` to `new` only if it still points at `old` (no lost updates);
        `old` "" creates it, refusing if it exists."""
        with self.lock:
            self.run("update-ref", "-m", why, f"refs/heads/{branch}", new, old)

    def attach_worktree(self, worktree: Path, branch: str, *, checkout: bool) -> None:
        """Put a worktree's HEAD on `branch`. Without `checkout` the index and files stay
        (the branch points at the commit they hold); with it they become the branch's."""
        with self.lock:
            self.run("symbolic-ref", "HEAD", f"refs/heads/{branch}", cwd=worktree)
            if checkout:
                self.run("reset", "-q", "--hard", cwd=worktree)

    def fast_forward(self, worktree: Path, commit: str) -> None:
        """`git merge --ff-only commit` in a worktree (the user allowed it to be touched)."""
        with self.lock:
            self.run("merge", "--ff-only", "-q", commit, cwd=worktree)

    # -- changes ------------------------------------------------------------------------
    def exclude_pattern(self, pattern: str) -> None:
        """Add a pattern to the repository's info/exclude (shared by every worktree)."""
        with self.lock:
            add_exclude(self.common_dir(), pattern)

    def create_branch(self, branch: str, at: str) -> None:
        with self.lock:
            self.run("branch", branch, at)

    def create_branches(self, branches: Sequence[str], at: str) -> None:
        """New branches at `at`, all or none, in one process (`git branch` each is one)."""
        lines = "".join(f"create refs/heads/{b} {at}\n" for b in branches)
        with self.lock:
            code, _, err = self._raw(["update-ref", "-m", f"branch: Created from {at}",
                                      "--stdin"], self.root, stdin=lines)  # fmt: skip
        if code != 0:
            raise GitError(f"git update-ref --stdin failed: {err.strip()}")

    def add_worktree(
        self,
        path: Path,
        branch: str,
        start: str | None = None,
        *,
        checkout: bool = True,
        force: bool = False,
    ) -> None:
        """Worktree at `path` on `branch`, creating the branch at `start` when given.

        Only the metadata step (branch, `.git/worktrees/<name>`) holds the lock; the
        checkout, most of the cost in a large repository, runs outside it: each worktree
        has its own index, so checkouts of different worktrees do not race (git's own
        `worktree add` checks out with this same `reset --hard`). With `checkout=False`
        the worktree has no index and no files until `check_out` (or `complete_checkout`).
        `force` (-f): for callers that made sure the path and branch are free (-f skips it).
        """
        with self.lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            opts = ("-q", "--no-checkout", *(("-f",) if force else ()))
            if start is not None:
                self.run("worktree", "add", *opts, "-b", branch, str(path), start)
            else:
                self.run("worktree", "add", *opts, str(path), branch)
        if checkout:
            self.run("reset", "-q", "--hard", cwd=path)

    def check_out(self, worktree: Path, commit: str) -> None:
        """Move the branch of a worktree made with `checkout=False` to `commit`, check it out.
        Creates nothing in `.git/worktrees`: agents reading git metadata meanwhile are safe."""
        settle_checkout_lock(worktree)  # a killed run's checkout of it (cpo.indexlock)
        self.run("reset", "-q", "--hard", commit, cwd=worktree)

    def complete_checkout(self, worktree: Path) -> bool:
        """Finish a checkout that a kill cut short between `worktree add --no-checkout` and
        `reset --hard`; True if it had to. Such a worktree has no index yet, and would
        otherwise look as if every file had been deleted. No agent ever ran in it (agents
        start after the checkout), so nothing in it is work (nor in its lock: cpo.indexlock).
        """
        if self.checked_out(worktree):
            return False
        settle_checkout_lock(worktree)
        if not self.checked_out(worktree):  # unless the killed run's git just finished it
            self.run("reset", "-q", "--hard", cwd=worktree)
        return True

    def checked_out(self, worktree: Path) -> bool:
        """Whether a worktree was ever checked out: one made with `--no-checkout` (cpo makes
        every worktree of a run before its first agent starts) has no index until then."""
        index = self.run("rev-parse", "--path-format=absolute", "--git-path", "index", cwd=worktree)
        return Path(index).exists()

    def remove_worktree(self, path: Path, *, force: bool = False) -> None:
        with self.lock:
            self.run("worktree", "remove", *(["--force"] if force else []), str(path))

    def delete_branch(self, branch: str, *, force: bool = False) -> None:
        with self.lock:
            self.run("branch", "-D" if force else "-d", branch)

    def commit_leftovers(self, worktree: Path, message: str) -> bool:
        """Commit what the agent left uncommitted (not the marker); True if any. Edits in a
        submodule's files stay in the worktree: they are its repository's (callers say so)."""
        return self.settle_worktree(worktree, message)[0]

    def settle_worktree(self, worktree: Path, message: str) -> tuple[bool, WorktreeStatus]:
        """`commit_leftovers`, and the worktree's status after: what stays uncommitted
        (submodule edits), HEAD and its branch. One status if nothing was left."""
        status = self.worktree_status(worktree)
        if not status.paths:
            return False, status
        with self.lock:
            if not self.ok("add", "-A", cwd=worktree):  # git >= 2.34, outside a sparse set
                self.run("add", "-A", "--sparse", cwd=worktree)
            if self.ok("diff", "--cached", "--quiet", cwd=worktree):
                return False, self.worktree_status(worktree)
            self.run("commit", "-q", "--no-verify", "-m", message, cwd=worktree)
        return True, self.worktree_status(worktree)

    def commit_removal(self, worktree: Path, path: str, message: str) -> None:
        """Commit the removal of `path` (index and file); callers commit other changes first."""
        with self.lock:
            self.run("rm", "-q", "-f", "--ignore-unmatch", "--", path, cwd=worktree)
            self.run("commit", "-q", "--no-verify", "-m", message, cwd=worktree)

    def reset_worktree(self, worktree: Path, to: str) -> None:
        """Put a task worktree back at its start point (callers save its work first)."""
        with self.lock:
            self.run("reset", "-q", "--hard", to, cwd=worktree)
            self.run("clean", "-q", "-fdx", "-e", MARKER, cwd=worktree)
            (worktree / MARKER).unlink(missing_ok=True)

    def merge(
        self, worktree: Path, branch: str, message: str, *, keep_conflicts: bool = False
    ) -> MergeResult:
        """Merge `branch` into the branch checked out in `worktree` with --no-ff.

        On conflict the merge is aborted (the worktree is left as before) and the
        conflicting files are returned; with `keep_conflicts` a merge stopped by conflicts
        is left in progress, for someone to resolve (cpo.run.resolve).
        """
        with self.lock:
            code, out, err = self._raw(
                ["merge", "--no-ff", "--no-edit", "-m", message, branch], worktree
            )
            if code == 0:
                commit = head_from_files(worktree) or self.run("rev-parse", "HEAD", cwd=worktree)
                return MergeResult(ok=True, commit=commit)
            files = self.run("diff", "--name-only", "--diff-filter=U", cwd=worktree, check=False)
            # A hook refusing the merge commit leaves MERGE_HEAD and no unmerged file.
            stopped = self.ok("rev-parse", "-q", "--verify", "MERGE_HEAD", cwd=worktree)
            if not (keep_conflicts and files.strip()):
                self._raw(["merge", "--abort"], worktree)
        return merge_failure(code, out, err, tuple(f for f in files.splitlines() if f), stopped)
