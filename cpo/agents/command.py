"""The `command` backend: any shell command as the agent (`--agent-command CMD`).

The command runs in the task's worktree with the prompt on stdin, like every agent.
It has no output protocol: each stdout line is logged, the last non-empty one is the
"last action", and success is decided by the engine from the exit code and the
completion marker. A command that happens to print a Claude-style `{"type": "result"}`
line (for example a wrapper around `claude -p --output-format stream-json`) gets that
result parsed, so its errors are classified like claude's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from cpo.agents.base import AgentEvent, AgentOutcome, AgentRequest, EventParser
from cpo.agents.claude import ClaudeParser
from cpo.agents.common import agent_env, shorten, stderr_lines
from cpo.errors import UsageError

MISSING_COMMAND = "--backend command needs --agent-command CMD"


@dataclass
class CommandParser:
    last_line: str | None = None
    claude: ClaudeParser = field(default_factory=ClaudeParser)
    saw_result: bool = False

    def feed(self, line: str) -> list[AgentEvent]:
        text = line.rstrip()
        if not text.strip():
            return []
        self.last_line = text
        if text.lstrip().startswith("{") and '"result"' in text:
            try:
                data = json.loads(text)
            except (ValueError, RecursionError):
                data = None
            if isinstance(data, dict) and data.get("type") == "result":
                self.saw_result = True
                return self.claude.feed(text)
        return [AgentEvent(log=text, action=shorten(text))]

    def finish(self, exit_code: int | None, stderr_tail: str) -> AgentOutcome:
        if self.saw_result:
            return self.claude.finish(exit_code, stderr_tail)
        failed = exit_code is not None and exit_code != 0
        lines = stderr_lines(stderr_tail)
        return AgentOutcome(
            final_text=self.last_line,
            reported_result=False,
            is_error=failed,
            # No class: the engine reports a failing command as exit_code_N.
            error_class=None,
            error_text=(lines[-1] if lines else None) if failed else None,
        )


class CommandBackend:
    name = "command"
    resumes = False  # a shell command has no session to continue

    def executable(self, req: AgentRequest) -> str | None:
        return "/bin/sh"

    def argv(self, req: AgentRequest) -> list[str]:
        if not req.command:
            raise UsageError(MISSING_COMMAND, hint="for example: --agent-command 'make agent'")
        # shell=True on purpose: the command is the user's own string, like a validation.
        return ["/bin/sh", "-c", req.command]

    def env(self, req: AgentRequest, base: Mapping[str, str]) -> dict[str, str]:
        return agent_env(base)

    def unsupported(self, req: AgentRequest) -> list[str]:
        """A plain command has no approval or sandbox options: say so rather than drop them."""
        notes = []
        if (req.approval_mode or "default") != "default":
            notes.append(f"command: approval_mode {req.approval_mode} is not enforced")
        if (req.sandbox_mode or "default") != "default":
            notes.append(f"command: sandbox_mode {req.sandbox_mode} is not enforced")
        return notes

    def preflight(self, reqs: list[AgentRequest], env: Mapping[str, str]) -> list[str]:
        missing = sorted({r.task_id for r in reqs if not (r.command and r.command.strip())})
        if not missing:
            return []
        return [f"{MISSING_COMMAND} (no command for: {', '.join(missing)})"]

    def parser(self) -> EventParser:
        return CommandParser()


BACKEND = CommandBackend()
