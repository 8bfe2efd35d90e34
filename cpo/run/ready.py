"""Worktrees ready to work in: `.worktreeinclude` files copied in, setup commands run.

A fresh checkout lacks what is not in git (`.env`, `.claude/settings.local.json`) and
what is built from it (installed dependencies). `.worktreeinclude` at the repository's
root (gitignore syntax, the file Claude Code reads), the config key `worktree.include`
and the manifest key `worktree_include` name the untracked files of the user's checkout
to copy into each worktree; git's own matcher (`Git.untracked_matching`) reads them.
Then the setup commands run in the worktree: the spec's (manifest `setup`, else config
`worktree.setup`), then the task's own (frontmatter `setup`).

Copies keep modes; a symlink stays a symlink, and one that leads out of the repository
is not copied: a worktree must never give an agent a way out of it.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cpo.duration import format_duration
from cpo.git import Git, agent_git_env
from cpo.plan.model import Plan, TaskSpec
from cpo.proc import ProcessRegistry, run_capture
from cpo.run.ports import PortBlock, PortRange
from cpo.run.report import SetupStep
from cpo.run.taskenv import RunEnv
from cpo.secrets import Masker
from cpo.settings import Settings

INCLUDE_FILE = ".worktreeinclude"


@dataclass(frozen=True)
class Readiness:
    """What makes each worktree of a run ready: files to copy, the spec's setup."""

    repo: Path  # the user's checkout the files come from
    files: tuple[str, ...] = ()  # relative to `repo`
    setup: tuple[str, ...] = ()  # the spec-level commands
    shared: tuple[str, ...] = ()  # folders linked to the checkout's single copy


def spec_setup(plan: Plan, settings: Settings) -> tuple[str, ...]:
    """The spec-level setup commands: the manifest's `setup`, else config `worktree.setup`."""
    if plan.setup is not None:
        return plan.setup
    configured = settings.values.get("worktree.setup") or ()
    return tuple(str(c) for c in configured) if isinstance(configured, tuple) else ()


def include_patterns(plan: Plan, settings: Settings) -> tuple[str, ...]:
    """Patterns beyond `.worktreeinclude`'s: config `worktree.include`, manifest
    `worktree_include`."""
    configured = settings.values.get("worktree.include") or ()
    extra = tuple(str(p) for p in configured) if isinstance(configured, tuple) else ()
    return extra + plan.include


def shared_dirs(plan: Plan, settings: Settings) -> tuple[str, ...]:
    """Folders every worktree links to the checkout's copy: config `worktree.share`, then
    the manifest's `share`."""
    configured = settings.values.get("worktree.share") or ()
    extra = tuple(str(p).strip("/") for p in configured) if isinstance(configured, tuple) else ()
    return tuple(dict.fromkeys(extra + plan.share))


def included_files(git: Git, repo: Path, plan: Plan, settings: Settings) -> list[str]:
    """The untracked files of the user's checkout that every worktree gets."""
    include_file = repo / INCLUDE_FILE
    return git.untracked_matching(
        include_file if include_file.is_file() else None, include_patterns(plan, settings)
    )


def find_readiness(git: Git, repo: Path, plan: Plan, settings: Settings) -> Readiness:
    """The files every worktree of this run gets and the spec's setup commands.

    Included files that git does not ignore are added to the repository's `info/exclude`:
    otherwise cpo would commit them as an agent's leftovers, onto the task branch.
    """
    shared = shared_dirs(plan, settings)
    files = [f for f in included_files(git, repo, plan, settings) if not _under(f, shared)]
    if files:
        not_ignored = {path for code, path in git.status_entries(repo) if code == "??"}
        for path in files:
            if path in not_ignored:
                git.exclude_pattern("/" + _escape(path))
    for path in shared:
        # A link is no folder to git: `node_modules/` in .gitignore does not match it.
        git.exclude_pattern("/" + _escape(path))
    return Readiness(repo, tuple(files), spec_setup(plan, settings), shared)


def _under(path: str, folders: Sequence[str]) -> bool:
    return any(path == f or path.startswith(f + "/") for f in folders)


def _escape(path: str) -> str:
    """A path as a gitignore pattern matching only itself."""
    for special in ("\\", "*", "?", "[", "!", "#"):
        path = path.replace(special, "\\" + special)
    return path


def copy_included(
    repo: Path, files: Sequence[str], worktree: Path, into: list[str] | None = None
) -> tuple[int, list[str]]:
    """Copy `files` (relative to `repo`) into `worktree`; (how many, why each other was not).
    The paths copied are added to `into` when given (the report names them).

    A path the worktree already holds (the branch tracks it) is left as the branch has it.
    """
    repo_real, tree_real = os.path.realpath(repo), os.path.realpath(worktree)
    copied, skipped = 0, []
    for rel in files:
        try:
            why = _copy_one(repo / rel, worktree / rel, repo_real, tree_real)
        except OSError as exc:  # say, a file the branch tracks where the folder would go
            why = f"cannot be copied: {exc.strerror or exc}"
        if why is None:
            copied += 1
            if into is not None:
                into.append(rel)
        elif why:
            skipped.append(f"{rel}: {why}")
    return copied, skipped


def _copy_one(src: Path, dst: Path, repo_real: str, tree_real: str) -> str | None:
    """Copy one file or symlink; None when copied, else why not ("" when nothing to say)."""
    if os.path.lexists(dst) or not os.path.lexists(src):
        return ""  # the branch tracks it, or it is gone since it was listed
    if not _inside(os.path.realpath(dst.parent), tree_real):
        return "its folder in the worktree is a link out of it"
    if src.is_symlink():
        target = os.path.realpath(src)
        if not _inside(target, repo_real):
            return f"a symlink to {os.readlink(src)}, outside the repository"
        dst.parent.mkdir(parents=True, exist_ok=True)
        # Relative, so that it points into the worktree, not the user's checkout.
        os.symlink(os.path.relpath(target, os.path.realpath(src.parent)), dst)
    elif src.is_file():
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst, follow_symlinks=False)
    else:
        return ""
    return None


def link_shared(repo: Path, shared: Sequence[str], worktree: Path) -> list[str]:
    """Link each shared folder of `worktree` to the checkout's copy; why each other was not."""
    skipped = []
    for rel in shared:
        src, dst = repo / rel, worktree / rel
        if os.path.lexists(dst):
            continue  # the branch tracks it, or an earlier attempt linked it
        if not src.is_dir():
            skipped.append(f"{rel}: no such folder in {repo} (install it there once)")
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(src.resolve(), dst, target_is_directory=True)
    return skipped


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def run_setup(
    commands: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    timeout: float | None,
    registry: ProcessRegistry | None,
    write: Callable[[str], None],
    steps: list[SetupStep] | None = None,
) -> str | None:
    """Run each command in order, its output to `write` (and each one's outcome to
    `steps`); the error of the first that fails (naming it), or None when all succeed."""
    for command in commands:
        write(f"[cpo] setup: $ {command}")
        start = time.monotonic()
        # The user's own command line: shell=True by design, like wave validations.
        code, out, timed_out = run_capture(
            command, cwd=cwd, env=env, shell=True, timeout=timeout, registry=registry
        )
        if out.strip():
            write(out.rstrip())
        took = time.monotonic() - start
        end = "timed out" if timed_out else f"exit code {code}"
        write(f"[cpo] setup: {end} after {took:.1f} s")
        if steps is not None:
            steps.append(
                SetupStep(
                    command=command,
                    exit_code=None if timed_out else code,
                    duration_s=round(took, 3),
                )
            )
        if code != 0:
            if timed_out:  # the limit it hit, as the config and flags write it
                end += f" after {format_duration(timeout or took)}"
            return f"setup command {command!r} failed ({end})"
    return None


def make_ready(
    ready: Readiness,
    commands: Sequence[str],
    *,
    worktree: Path,
    env: dict[str, str],
    timeout: float | None,
    registry: ProcessRegistry | None,
    write: Callable[[str], None],
    readied: Readied | None = None,
) -> str | None:
    """Copy the included files into `worktree`, then run the spec's setup and `commands`
    (a task's own) there; the error of a failed setup command, or None. What was done
    goes into `readied` when given."""
    for why in link_shared(ready.repo, ready.shared, worktree):
        write(f"[cpo] warning: not shared: {why}")
    if ready.files:
        into = readied.included if readied is not None else None
        copied, skipped = copy_included(ready.repo, ready.files, worktree, into)
        write(f"[cpo] copied {copied} file(s) named by {INCLUDE_FILE}")
        for why in skipped:
            write(f"[cpo] warning: not copied: {why}")
    return run_setup(
        (*ready.setup, *commands),
        cwd=worktree,
        env=env,
        timeout=timeout,
        registry=registry,
        write=write,
        steps=readied.setup if readied is not None else None,
    )


def ready_for_validation(
    ready: Readiness,
    worktree: Path,
    *,
    env: dict[str, str],
    timeout: float | None,
    registry: ProcessRegistry | None,
    log: Path,
    masker: Masker,
) -> str | None:
    """A tree where wave validations run, made ready as a task's worktree is, minus the
    task's own setup: `cpo run`'s integration worktree before its first validation, and
    `cpo integrate`'s merge result, so that both validate under the same conditions. The
    output goes, masked, to `log` (appended); the error of a failed setup command, or None."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as fh:
        return make_ready(
            ready,
            (),
            worktree=worktree,
            env=env,
            timeout=timeout,
            registry=registry,
            write=lambda text: print(masker.mask(text), file=fh, flush=True),
        )


@dataclass
class Readied:
    """What readying one task's worktree did, for its attempt in the report."""

    included: list[str] = field(default_factory=list)
    setup: list[SetupStep] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)  # [first, last] of the block held


@dataclass(frozen=True)
class Started:
    """A task made ready for its agent: its environment and ports, or why setup failed."""

    env: dict[str, str]
    ports: PortBlock | None
    error: str | None = None

    def release(self) -> None:
        if self.ports is not None:
            self.ports.release()


@dataclass(frozen=True)
class TaskPrep:
    """What readies each task of a run before its agent: files, setup, env and ports."""

    ready: Readiness
    run_env: RunEnv
    registry: ProcessRegistry | None = None  # stops setup commands with the agents
    ports: PortRange | None = None  # none: no ports
    # Told what readying a task's attempt did: (task, attempt number, what was done).
    record: Callable[[TaskSpec, int, Readied], None] | None = None

    def start(
        self,
        task: TaskSpec,
        worktree: Path,
        attempt_no: int,
        timeout: float | None,
        log: Callable[[TaskSpec, str], None],
    ) -> Started:
        """Take a block of ports, copy the included files, run the setup commands. The
        caller releases the ports (`Started.release`) when the agent is done."""

        def write(text: str) -> None:
            log(task, text)

        ports = self.ports or PortRange(count=0)
        block = ports.acquire()
        if block is not None:
            last = block.base + block.count - 1
            write(f"[cpo] ports {block.base}-{last} (CPO_PORT={block.base})")
        elif ports.count:
            write("[cpo] warning: no free block of ports: CPO_PORT is not set")
        env = self.run_env.for_task(task, worktree, attempt_no, block.env() if block else None)
        readied = Readied(ports=[block.base, block.base + block.count - 1] if block else [])
        error = make_ready(
            self.ready,
            task.setup,
            worktree=worktree,
            env=agent_git_env(env),
            timeout=timeout,
            registry=self.registry,
            write=write,
            readied=readied,
        )
        if self.record is not None:
            self.record(task, attempt_no, readied)
        return Started(env, block, error and f"{error}; see the task log")
