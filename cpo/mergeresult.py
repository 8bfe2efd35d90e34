"""What a failed `git merge` means: files in conflict, a hook's refusal, or untracked files
in the way. Pure: cpo.git runs the merge and hands its output here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class MergeResult:
    ok: bool
    commit: str | None = None
    conflict_files: tuple[str, ...] = ()
    message: str = ""
    # Why a merge failed: files in conflict, a hook that refused the merge commit
    # (pre-merge-commit, commit-msg; `message` holds its output), or untracked files in
    # the target worktree that the merge would overwrite (`conflict_files` names them).
    failure: Literal["conflict", "hook_rejected", "untracked"] | None = None


_OVERWRITTEN = re.compile(r"untracked working tree files would be (?:overwritten|removed)")


def merge_failure(
    code: int, out: str, err: str, conflicts: tuple[str, ...], stopped: bool
) -> MergeResult:
    text = "\n".join(s for s in (err.strip(), out.strip()) if s)
    lines = text.splitlines()
    last = lines[-1] if lines else f"exit {code}"
    if conflicts:
        return MergeResult(ok=False, conflict_files=conflicts, message=last, failure="conflict")
    if _OVERWRITTEN.search(text):
        # git lists them one per line, indented with a tab, between two messages.
        files = tuple(line.strip() for line in lines if line.startswith("\t"))
        return MergeResult(
            ok=False,
            conflict_files=files,
            message="untracked files in the way: " + ", ".join(files),
            failure="untracked",
        )
    if stopped:
        return MergeResult(ok=False, message=text[-2000:] or last, failure="hook_rejected")
    return MergeResult(ok=False, message=last, failure="conflict")
