"""The `codex` backend: OpenAI Codex CLI in `codex exec --json` mode.

`codex exec --json` prints one JSON event per line: `thread.started` (thread_id, our
session id), `turn.started`, `item.started` / `item.updated` / `item.completed` whose
`item.type` is `agent_message`, `reasoning`, `command_execution`, `file_change`,
`mcp_tool_call`, `web_search`, `todo_list` or `error`; then `turn.completed` (with
`usage`: input, cached input and output tokens) or `turn.failed` (`error.message`).
A top-level `error` event carries a stream error. No cost is reported.

The prompt goes on stdin (`-` as the PROMPT argument). cpo's completion protocol goes
in `-c developer_instructions=...`, codex's own "append to the system prompt".
`codex exec` has no `-a/--ask-for-approval` (that is the interactive TUI's flag), so
the approval policy is set with `-c approval_policy=...`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from cpo.agents.base import AgentEvent, AgentOutcome, AgentRequest, ErrorClass, EventParser
from cpo.agents.common import (
    MAX_FINAL_TEXT,
    AgentCli,
    agent_env,
    classify_error,
    classify_stderr,
    claude_options_ignored,
    ended_without,
    flags_in,
    path_action,
    shorten,
    stderr_lines,
    usage_error,
)
from cpo.agents.jsonsafe import JsonLinesParser, as_dict, as_int, as_list, as_str

CLI = AgentCli("codex", env_var="CPO_CODEX_BIN", install_hint="npm install -g @openai/codex")

# No `always` policy any more: codex 0.169 refuses `approval_policy="untrusted"` ("is no
# longer supported"), so the strictest it takes, on-request, stands in (and is said).
APPROVAL_POLICY = {"default": None, "auto": "on-request", "none": "never", "always": "on-request"}
SANDBOX_POLICY = {
    "default": "workspace-write",
    "read-only": "read-only",
    "workspace": "workspace-write",
    "full": "danger-full-access",
}
APPROVAL_FLAGS = {
    "default": "nothing (`codex exec` never asks)",
    "auto": '`-c approval_policy="on-request"` (headless: a request is refused)',
    "none": '`-c approval_policy="never"`',
    "always": '`-c approval_policy="on-request"`, as `auto` (codex dropped `untrusted`): warning',
}
SANDBOX_FLAGS = {
    "default": "`--sandbox workspace-write` (codex exec alone would be read-only)",
    "read-only": "`--sandbox read-only`",
    "workspace": "`--sandbox workspace-write`",
    "full": "`--sandbox danger-full-access`",
}


# clap's usage errors (exit 2), and a `-c` value codex's config refuses (exit 1)
_BAD_FLAG = (
    "unexpected argument",
    "invalid value",
    "unrecognized",
    "error: the argument",
    "unknown variant",
    "is no longer supported",
)


@dataclass
class CodexParser(JsonLinesParser):
    """`codex exec --json` lines → log lines and actions; the run → an outcome."""

    session_id: str | None = None
    final_text: str | None = None
    turns: int = 0
    completed: bool = False
    failed_text: str | None = None
    stream_error: str | None = None
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    usage_seen: bool = False
    started_items: set[str] = field(default_factory=set)

    def _event(self, data: dict[str, object]) -> list[AgentEvent]:
        kind = data.get("type")
        if kind == "thread.started":
            self.session_id = as_str(data.get("thread_id")) or self.session_id
            return [AgentEvent(log=f"session {self.session_id or '?'} (codex)")]
        if kind == "turn.started":
            self.turns += 1
            return []
        if kind == "turn.completed":
            self.completed = True
            self.failed_text = None
            usage = as_dict(data.get("usage"))
            self.usage_seen = self.usage_seen or bool(usage)
            self.input_tokens += as_int(usage.get("input_tokens")) or 0
            self.cached_tokens += as_int(usage.get("cached_input_tokens")) or 0
            self.output_tokens += as_int(usage.get("output_tokens")) or 0
            return [
                AgentEvent(log=f"turn completed ({self.input_tokens} in, {self.output_tokens} out)")
            ]
        if kind == "turn.failed":
            text = as_str(as_dict(data.get("error")).get("message")) or "turn failed"
            self.failed_text = text
            return [AgentEvent(log=f"turn failed: {text}")]
        if kind == "error":
            text = as_str(data.get("message")) or "error"
            self.stream_error = text
            return [AgentEvent(log=f"error: {text}", action=shorten(f"error: {text}"))]
        if kind in ("item.started", "item.updated", "item.completed"):
            return self._item(str(kind), as_dict(data.get("item")))
        return []

    def _item(self, kind: str, item: dict[str, object]) -> list[AgentEvent]:
        itype = item.get("type")
        item_id = as_str(item.get("id")) or ""
        done = kind == "item.completed"
        if itype == "agent_message" and done:
            text = as_str(item.get("text")) or ""
            self.final_text = text[-MAX_FINAL_TEXT:]
            return [AgentEvent(log=text)] if text.strip() else []
        if itype == "command_execution":
            command = as_str(item.get("command")) or "?"
            action = shorten(f"Bash: {command}")
            events: list[AgentEvent] = []
            if kind == "item.started":
                self.started_items.add(item_id)
                return [AgentEvent(log=f"→ {action}", action=action)]
            if done:
                if item_id not in self.started_items:
                    events.append(AgentEvent(log=f"→ {action}", action=action))
                code = as_int(item.get("exit_code"))
                if item.get("status") in ("failed", "declined") or (code not in (None, 0)):
                    out = shorten(as_str(item.get("aggregated_output")) or "", 300)
                    events.append(
                        AgentEvent(log=f"command {item.get('status')} (exit {code}): {out}")
                    )
            return events
        if itype == "file_change" and done:
            verbs = {"add": "Write", "update": "Edit", "delete": "Delete"}
            events = []
            for change in as_list(item.get("changes")):
                c = as_dict(change)
                path = as_str(c.get("path")) or "?"
                action = path_action(verbs.get(str(c.get("kind")), "Edit"), path)
                events.append(AgentEvent(log=f"→ {action}", action=action))
            if item.get("status") == "failed":
                events.append(AgentEvent(log="file change failed"))
            return events
        if itype == "mcp_tool_call" and kind == "item.started":
            action = shorten(f"{item.get('server')}.{item.get('tool')}")
            return [AgentEvent(log=f"→ {action}", action=action)]
        if itype == "web_search" and kind == "item.started":
            action = shorten(f"WebSearch: {as_str(item.get('query')) or ''}")
            return [AgentEvent(log=f"→ {action}", action=action)]
        if itype == "error" and done:
            return [AgentEvent(log=f"warning: {as_str(item.get('message')) or ''}")]
        return []

    def finish(self, exit_code: int | None, stderr_tail: str) -> AgentOutcome:
        seen = AgentOutcome(
            final_text=self.final_text,
            session_id=self.session_id,
            num_turns=self.turns or None,
            input_tokens=self.input_tokens if self.usage_seen else None,
            output_tokens=self.output_tokens if self.usage_seen else None,
            extra={"cached_input_tokens": self.cached_tokens} if self.cached_tokens else {},
        )
        error_text = self.failed_text or (None if self.completed else self.stream_error)
        if error_text is not None:
            error_class, reset_at = classify_error(error_text)
            return replace(
                seen,
                reported_result=True,
                is_error=True,
                error_class=error_class,
                error_text=error_text,
                reset_at=reset_at,
            )
        if self.completed:
            return replace(seen, reported_result=True)
        lines = stderr_lines(stderr_tail)
        bad = usage_error(lines, _BAD_FLAG)
        error_cls: ErrorClass = "crashed"
        reset_at = None
        text: str | None
        if bad is not None:
            error_cls, text = "bad_flag", bad
        else:
            # A limit said on stderr only keeps when it lifts (as gemini's does), so the
            # run can pause until then rather than retry at once.
            cls, text, reset_at = classify_stderr(lines)
            error_cls = cls or error_cls
        if text is None:
            text = ended_without("completing a turn", exit_code)
        return replace(
            seen, is_error=True, error_class=error_cls, error_text=text, reset_at=reset_at
        )


def _toml_string(text: str) -> str:
    # A JSON string is a valid TOML basic string for everything json.dumps emits
    # (\n, \", \\ and \uXXXX escapes), and codex parses `-c` values as TOML.
    return json.dumps(text, ensure_ascii=False)


class CodexBackend:
    name = "codex"
    resumes = True

    def executable(self, req: AgentRequest) -> str | None:
        return CLI.bin(os.environ)

    def argv(self, req: AgentRequest) -> list[str]:
        # --skip-git-repo-check: `cpo parallel` may run in any directory the user chose;
        # in a task worktree the check would pass anyway.
        # `exec resume` continues a session; it has no --sandbox, so the config key says it.
        sub = ["exec", "resume"] if req.resume else ["exec"]
        args = [CLI.bin(os.environ), *sub, "--json", "--skip-git-repo-check"]
        if req.model:
            args += ["-m", req.model]
        sandbox = SANDBOX_POLICY[req.sandbox_mode or "default"]
        args += (
            ["-c", f"sandbox_mode={_toml_string(sandbox)}"]
            if req.resume
            else ["--sandbox", sandbox]
        )
        policy = APPROVAL_POLICY[req.approval_mode or "default"]
        if policy:
            args += ["-c", f"approval_policy={_toml_string(policy)}"]
        if req.system_prompt:
            args += ["-c", f"developer_instructions={_toml_string(req.system_prompt)}"]
        return [*args, *req.extra_args, *([req.resume] if req.resume else []), "-"]

    def env(self, req: AgentRequest, base: Mapping[str, str]) -> dict[str, str]:
        return agent_env(base)

    def unsupported(self, req: AgentRequest) -> list[str]:
        """Requested options codex cannot honour, one line each (said, never dropped)."""
        notes = []
        if req.approval_mode == "always":
            notes.append(
                "codex: has no approval policy that asks before every command (it dropped "
                "`untrusted`); approval_mode always runs as on-request"
            )
        if req.max_turns is not None:
            notes.append(f"codex: has no turn limit; max_turns {req.max_turns} is not enforced")
        return notes + claude_options_ignored("codex", req)

    def preflight(self, reqs: list[AgentRequest], env: Mapping[str, str]) -> list[str]:
        wanted = [flag for req in reqs for flag in flags_in(self.argv(req))]
        return CLI.check(["exec", "--help"], wanted, env)

    def parser(self) -> EventParser:
        return CodexParser()


BACKEND = CodexBackend()


__all__ = [
    "APPROVAL_FLAGS",
    "BACKEND",
    "SANDBOX_FLAGS",
    "CodexBackend",
    "CodexParser",
]
