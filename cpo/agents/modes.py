"""Backend-neutral approval and sandbox modes, and what each agent CLI makes of them.

`approval_mode` says how much the agent may do without asking; `sandbox_mode` how far
its commands may reach. cpo runs agents unattended: nobody is there to answer a
question, so in every CLI's headless mode "ask" means "refuse". `default` therefore
means cpo's default for an unattended agent that must edit its working tree (claude
`bypassPermissions`, codex exec's never-ask policy in a `workspace-write` sandbox,
gemini `yolo`), not the CLI's interactive default.

Each backend module holds its own mapping (`APPROVAL_FLAGS`, `SANDBOX_FLAGS`) and says,
through `unsupported(req)`, every requested option its CLI cannot honour, so nothing
is dropped silently. The claude mapping lives here (`claude_permission_mode`) because
the claude backend module belongs to another part of the project; it must call it.

Also here: the preflight helper that reads a CLI's `--help` and names the flags (and
flag values) this version of the CLI does not have.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from cpo.agents.base import AgentRequest

APPROVAL_MODES = ("default", "auto", "none", "always")
SANDBOX_MODES = ("default", "read-only", "workspace", "full")

HEADLESS_ASK = "headless, so a tool that needs approval is refused"

# -- claude ------------------------------------------------------------------------------
CLAUDE_DEFAULT_PERMISSION_MODE = "bypassPermissions"
CLAUDE_APPROVAL = {
    "default": "`--permission-mode bypassPermissions` (or `permission_mode` if set)",
    "auto": "`--permission-mode acceptEdits`",
    "none": "`--permission-mode bypassPermissions`",
    "always": f"`--permission-mode default` ({HEADLESS_ASK})",
}
CLAUDE_SANDBOX = {
    "default": "nothing",
    "read-only": "not supported: warning (use `permission_mode: plan` for a read-only run)",
    "workspace": "not supported: warning (the task's worktree is its only isolation)",
    "full": "not supported: warning",
}
_CLAUDE_MODE = {"auto": "acceptEdits", "none": "bypassPermissions", "always": "default"}


def claude_permission_mode(req: AgentRequest) -> tuple[str, list[str]]:
    """The `--permission-mode` for a claude task, and what cannot be honoured.

    An explicit, non-default `approval_mode` wins over a `permission_mode` (the
    backend-neutral option is the one a mixed-backend task file uses); a conflict
    between the two is said.
    """
    notes: list[str] = []
    approval = req.approval_mode or "default"
    mode = req.permission_mode or CLAUDE_DEFAULT_PERMISSION_MODE
    if approval != "default":
        mapped = _CLAUDE_MODE[approval]
        if req.permission_mode and req.permission_mode != mapped:
            notes.append(
                f"claude: approval_mode {approval} (--permission-mode {mapped}) overrides "
                f"permission_mode {req.permission_mode}"
            )
        mode = mapped
    sandbox = req.sandbox_mode or "default"
    if sandbox != "default":
        hint = " (use permission_mode plan for a read-only run)" if sandbox == "read-only" else ""
        notes.append(f"claude: has no sandbox option; sandbox_mode {sandbox} is not enforced{hint}")
    return mode, notes


# -- preflight: which flags does this CLI version know? ---------------------------------
def flags_in(argv: Sequence[str]) -> list[str]:
    """The option names in an argv (without values; `--a=b` gives `--a`)."""
    out: list[str] = []
    for arg in argv[1:]:
        if arg.startswith("-") and arg != "-" and not _is_number(arg):
            name = arg.split("=", 1)[0]
            if name not in out:
                out.append(name)
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def missing_words(words: Iterable[str], help_text: str) -> list[str]:
    """The words (flags or flag values) that do not appear in `help_text` as whole tokens."""
    missing = []
    for word in words:
        pattern = rf"(?<![\w-]){re.escape(word)}(?![\w-])"
        if not re.search(pattern, help_text):
            missing.append(word)
    return missing


def unknown_flags_problem(
    cli: str, help_command: str, words: Iterable[str], help_text: str, install_hint: str
) -> list[str]:
    """One preflight line naming the words the installed CLI's help does not know."""
    missing = missing_words(dict.fromkeys(words), help_text)
    if not missing:
        return []
    return [
        f"this {cli} version does not know {', '.join(missing)} (checked with "
        f"`{help_command}`): upgrade it with `{install_hint}`"
    ]


def read_help(argv: Sequence[str], env: Mapping[str, str]) -> tuple[int | None, str]:
    """Run a CLI's help (e.g. `codex exec --help`), returning (exit code, output)."""
    from cpo.proc import run_capture  # late: backends are pure and import nothing heavy

    try:
        code, out, _timed_out = run_capture(list(argv), cwd=Path.cwd(), env=env, timeout=30)
    except OSError as exc:
        return None, str(exc)
    return code, out


def mapping_table() -> str:
    """The README table: each neutral mode and what each CLI gets for it."""
    import cpo.agents.codex as codex
    import cpo.agents.gemini as gemini

    rows = ["| option | claude | codex | gemini |", "|---|---|---|---|"]
    for mode in APPROVAL_MODES:
        rows.append(
            f"| `approval_mode: {mode}` | {CLAUDE_APPROVAL[mode]} | "
            f"{codex.APPROVAL_FLAGS[mode]} | {gemini.APPROVAL_FLAGS[mode]} |"
        )
    for mode in SANDBOX_MODES:
        rows.append(
            f"| `sandbox_mode: {mode}` | {CLAUDE_SANDBOX[mode]} | "
            f"{codex.SANDBOX_FLAGS[mode]} | {gemini.SANDBOX_FLAGS[mode]} |"
        )
    return "\n".join(rows)


__all__ = [
    "APPROVAL_MODES",
    "SANDBOX_MODES",
    "claude_permission_mode",
    "flags_in",
    "mapping_table",
    "missing_words",
    "read_help",
]
