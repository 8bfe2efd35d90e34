"""Which text a task's agent gets as its prompt, and whether it has the expected sections.

Order (README, "The parallel directory"): `prompt_file` from the manifest or frontmatter;
`prompts/<id>.txt`; `prompts/<task-NNN>.txt` (the id's `task-NNN` prefix); otherwise the
task file's body.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from cpo.plan.paths import inside, read_text

# Sections written by /parallel-prompt-generator. OUTPUT FORMAT and COMPLETION SIGNAL
# are not required: cpo appends its own completion protocol to every prompt.
REQUIRED_SECTIONS = (
    "CONTEXT",
    "OBJECTIVE",
    "CONTRACTS",
    "FILES TO CREATE",
    "FILES TO MODIFY",
    "DO NOT MODIFY",
    "IMPLEMENTATION REQUIREMENTS",
    "ACCEPTANCE CRITERIA",
    "EXECUTION INSTRUCTIONS",
    "IMPORTANT RULES",
)
_SECTION = re.compile(r"^[ \t]*===[ \t]*([^=\n]+?)[ \t]*===[ \t]*$", re.M)
_TASK_NUMBER = re.compile(r"^(task-\d+)")


def section_names(text: str) -> set[str]:
    """Names of the `=== NAME ===` headers in a prompt, upper-cased, `(REQUIRED)` etc. dropped."""
    names = set()
    for m in _SECTION.finditer(text):
        name = re.sub(r"\s*\(.*\)\s*$", "", m.group(1)).strip().upper()
        names.add(name)
    return names


def missing_sections(text: str) -> list[str]:
    present = section_names(text)
    return [s for s in REQUIRED_SECTIONS if s not in present]


def uses_sections(text: str) -> bool:
    """Whether a prompt is written in the `=== SECTION ===` format at all."""
    return _SECTION.search(text) is not None


@dataclass(frozen=True)
class PromptChoice:
    """A resolved prompt, or why there is none. `where` is the (file, field) that chose it."""

    text: str | None
    source: str  # relative path, or "<task file> (body)"
    error: str | None = None
    where: tuple[str, str] = ("", "")
    from_file: bool = False


def resolve_prompt(
    *,
    root_real: str,
    task_id: str,
    prompt_file: str | None,
    prompt_file_where: tuple[str, str],
    body: str | None,
    task_file: str | None,
    prompt_names: Collection[str],
) -> PromptChoice:
    """Pick the prompt of one task. `prompt_names` lists the files in `prompts/` (one listing
    for the whole directory instead of a stat per task)."""
    if prompt_file is not None:
        path, why = inside(root_real, prompt_file)
        if path is None:
            return PromptChoice(None, prompt_file, f"prompt file {why}", prompt_file_where)
        return _read(path, prompt_file, prompt_file_where)
    candidates = [f"{task_id}.txt"]
    m = _TASK_NUMBER.match(task_id)
    if m and m.group(1) != task_id:
        candidates.append(f"{m.group(1)}.txt")
    for name in candidates:
        if name in prompt_names:
            rel = f"prompts/{name}"
            path, why = inside(root_real, rel)
            if path is None:
                return PromptChoice(None, rel, f"prompt file {why}", (rel, ""))
            return _read(path, rel, (rel, ""))
    if task_file is not None and body is not None:
        if body.strip():
            return PromptChoice(body, f"{task_file} (body)", where=(task_file, ""))
        return PromptChoice(
            None,
            task_file,
            "no prompt: the task file body is empty and there is no prompts/"
            f"{task_id}.txt; write the task in the body or add a prompt file",
            (task_file, ""),
        )
    tried = ", ".join(f"prompts/{c}" for c in candidates)
    return PromptChoice(
        None,
        "",
        f"no prompt for {task_id}: no prompt_file, no {tried}, and no task file; add one of them",
        prompt_file_where,
    )


def _read(path: Path, rel: str, where: tuple[str, str]) -> PromptChoice:
    text, why = read_text(path)
    if text is None:
        return PromptChoice(None, rel, f"prompt file {rel} {why}", where)
    if not text.strip():
        return PromptChoice(None, rel, f"prompt file {rel} is empty", where)
    return PromptChoice(text, rel, where=where, from_file=True)


# -- sparse checkouts (cpo.run.worktrees) -------------------------------------------------
def sparse_note(folders: Sequence[str]) -> str:
    """What an agent in a sparse worktree is told: what is there, how to get the rest."""
    held = "the files at its top level" + (
        f" and these folders: {', '.join(f + '/' for f in folders)}" if folders else ""
    )
    return (
        f"\n\nThis worktree is a sparse checkout: only {held} are checked out. The rest of "
        "the repository is in git, not deleted, only not checked out: to read or edit "
        "anything else, first run `git sparse-checkout add <folder>...`. Commit with "
        "`git add -A --sparse` so that new files outside those folders are committed too.\n"
    )
