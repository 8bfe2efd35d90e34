"""The scripted `claude`'s front door: the real CLI's flag rules and `--agent` lookup.

Messages and exit codes are those of Claude Code 2.1.197 (checked against it by
tests/real_claude/test_fake_vs_real.py); cpo.scripted.agent runs what gets through.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

import yaml

from cpo.scripted.messages import BUILTIN_AGENTS

# Flag -> the placeholder commander prints in its errors (`option '--model <model>' ...`).
_VALUE_FLAGS = {"--output-format": "format", "--permission-mode": "mode", "--model": "model",
                "--max-turns": "turns", "--agent": "agent", "--append-system-prompt": "prompt",
                "--system-prompt": "prompt", "--resume": "value", "-r": "value"}  # fmt: skip
_BOOL_FLAGS = {"-p", "--print", "--verbose", "--dangerously-skip-permissions", "--version", "-v"}
_CHOICES = {
    "--output-format": ("text", "json", "stream-json"),
    "--permission-mode": ("acceptEdits", "auto", "bypassPermissions", "default", "dontAsk",
                          "plan"),
}  # fmt: skip


class Stop(Exception):
    """Ends the run with an exit code (control flow, not an error)."""

    def __init__(self, code: int) -> None:
        self.code = code


def fail(message: str) -> NoReturn:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    raise Stop(1)


def parse_args(argv: list[str]) -> tuple[dict[str, str | bool], list[str]]:
    """Flags as the real CLI accepts them (`--x v` and `--x=v`), plus positionals."""
    opts: dict[str, str | bool] = {}
    positional: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            continue
        name, eq, value = arg.partition("=")
        if name in _VALUE_FLAGS:
            option = f"'{name} <{_VALUE_FLAGS[name]}>'"
            if not eq:
                if i >= len(argv):
                    fail(f"error: option {option} argument missing")
                value, i = argv[i], i + 1
            allowed = _CHOICES.get(name)
            if allowed and value not in allowed:
                fail(
                    f"error: option {option} argument '{value}' is invalid. "
                    f"Allowed choices are {', '.join(allowed)}."
                )
            opts[name] = value
        elif name in _BOOL_FLAGS and not eq:
            opts[name] = True
        else:
            fail(f"error: unknown option '{name}'")
    return opts, positional


# -- agents -----------------------------------------------------------------------------
def available_agents(cwd: Path) -> list[str]:
    """The names `--agent` accepts, sorted as the real CLI lists them (ignoring case).

    Built-in agents, then user and project agent files: any `*.md` below the folder
    (subfolders too) whose frontmatter has both `name` and `description`; the name is the
    frontmatter's, not the file's. $CPO_FAKE_AGENTS (comma list) adds names for tests."""
    names = set(BUILTIN_AGENTS)
    config = Path(os.environ.get("CLAUDE_CONFIG_DIR") or Path.home() / ".claude")
    for folder in (config / "agents", cwd / ".claude" / "agents"):
        if folder.is_dir():
            names.update(filter(None, map(_agent_name, sorted(folder.rglob("*.md")))))
    names.update(a.strip() for a in os.environ.get("CPO_FAKE_AGENTS", "").split(",") if a.strip())
    return sorted(names, key=lambda n: (n.lower(), n))


def _agent_name(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    parts = text.split("---", 2) if text.startswith("---") else []
    if len(parts) < 3:
        return None
    try:
        meta = yaml.safe_load(parts[1])
    except yaml.YAMLError:
        return None
    if not isinstance(meta, dict):
        return None
    name, description = meta.get("name"), meta.get("description")
    return name if isinstance(name, str) and name and description else None


def check_invocation(
    opts: dict[str, str | bool], positional: list[str], cwd: Path
) -> tuple[str, list[str]]:
    """The prompt and the available agents, or `fail` as the real CLI does (in its order)."""
    if not (opts.get("-p") or opts.get("--print")):
        fail("scripted claude: only print mode is scripted; pass -p/--print")
    if opts.get("--output-format") == "stream-json" and not opts.get("--verbose"):
        fail("Error: When using --print, --output-format=stream-json requires --verbose")
    bypass = opts.get("--permission-mode") == "bypassPermissions" or opts.get(
        "--dangerously-skip-permissions"
    )
    if bypass and os.geteuid() == 0 and os.environ.get("IS_SANDBOX") != "1":
        fail(
            "--dangerously-skip-permissions cannot be used with root/sudo privileges "
            "for security reasons"
        )
    agents = available_agents(cwd)
    agent = opts.get("--agent")
    if isinstance(agent, str) and agent not in agents:
        fail(f"--agent '{agent}' not found. Available agents: {', '.join(agents)}")
    parts = [] if sys.stdin is None or sys.stdin.isatty() else [sys.stdin.read()]
    prompt = "\n".join(parts + positional)
    if not prompt.strip():
        fail(
            "Error: Input must be provided either through stdin or as a prompt argument "
            "when using --print"
        )
    return prompt, agents
