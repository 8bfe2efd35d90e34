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
import re
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from cpo.agents.base import AgentEvent, AgentOutcome, AgentRequest, ErrorClass, EventParser
from cpo.agents.jsonsafe import as_dict, as_int, as_list, as_str, parse_json_line
from cpo.agents.modes import flags_in, read_help, unknown_flags_problem

INSTALL_HINT = "npm install -g @openai/codex"
ACTION_WIDTH = 80
MAX_FINAL_TEXT = 64 * 1024

APPROVAL_POLICY = {"default": None, "auto": "on-request", "none": "never", "always": "untrusted"}
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
    "always": '`-c approval_policy="untrusted"` (headless: a request is refused)',
}
SANDBOX_FLAGS = {
    "default": "`--sandbox workspace-write` (codex exec alone would be read-only)",
    "read-only": "`--sandbox read-only`",
    "workspace": "`--sandbox workspace-write`",
    "full": "`--sandbox danger-full-access`",
}


def _bin(env: Mapping[str, str]) -> str:
    return env.get("CPO_CODEX_BIN") or "codex"


def shorten(text: str, width: int = ACTION_WIDTH) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def path_action(verb: str, path: str, width: int = ACTION_WIDTH) -> str:
    """`Write /very/long/…/src/a.py`: a long path keeps its end, the part that says most."""
    room = width - len(verb) - 2
    return f"{verb} {path}" if len(path) <= room else f"{verb} …{path[-room:]}"


_AGAIN_IN = re.compile(
    r"try again in\s+(?:(\d+)\s*days?)?[\s,]*(?:(\d+)\s*hours?)?[\s,]*(?:(\d+)\s*min\w*)?",
    re.IGNORECASE,
)


def classify_text(text: str) -> tuple[ErrorClass, float | None]:
    """An error message's class, from the words and HTTP statuses codex and gemini use."""
    low = text.lower()
    if re.search(r"\b(401|403)\b", low) or any(
        w in low
        for w in (
            "unauthorized",
            "not logged in",
            "login",
            "api key",
            "authentication",
            "auth method",
        )
    ):
        return "auth", None
    if "usage limit" in low or ("quota exceeded" in low and "per day" in low):
        return "usage_limit", _reset_from(text)
    if re.search(r"\b429\b", low) or any(
        w in low for w in ("rate limit", "rate_limit", "too many requests", "resource_exhausted")
    ):
        return "rate_limited", _reset_from(text)
    if re.search(r"\b(503|529)\b", low) or "overloaded" in low:
        return "overloaded", None
    return "agent_error", None


def _reset_from(text: str) -> float | None:
    m = _AGAIN_IN.search(text)
    if not m or not any(m.groups()):
        return None
    days, hours, minutes = (int(g) if g else 0 for g in m.groups())
    return time.time() + days * 86400 + hours * 3600 + minutes * 60


_BAD_FLAG = ("unexpected argument", "invalid value", "unrecognized", "error: the argument")


@dataclass
class CodexParser:
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

    def feed(self, line: str) -> list[AgentEvent]:
        data = parse_json_line(line)
        if data is None:
            return [AgentEvent(log=line)] if line.strip() else []
        try:
            return self._event(data)
        except Exception:  # a surprising shape must never stop a task's log
            return [AgentEvent(log=line)]

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
        common: dict[str, object] = {
            "session_id": self.session_id,
            "num_turns": self.turns or None,
            "input_tokens": self.input_tokens if self.usage_seen else None,
            "output_tokens": self.output_tokens if self.usage_seen else None,
            "extra": {"cached_input_tokens": self.cached_tokens} if self.cached_tokens else {},
        }
        error_text = self.failed_text or (None if self.completed else self.stream_error)
        if error_text is not None:
            error_class, reset_at = classify_text(error_text)
            return AgentOutcome(
                final_text=self.final_text,
                reported_result=True,
                is_error=True,
                error_class=error_class,
                error_text=error_text,
                reset_at=reset_at,
                **common,  # type: ignore[arg-type]
            )
        if self.completed:
            return AgentOutcome(final_text=self.final_text, reported_result=True, **common)  # type: ignore[arg-type]
        lines = [ln.strip() for ln in stderr_tail.splitlines() if ln.strip()]
        bad = [ln for ln in lines if any(m in ln.lower() for m in _BAD_FLAG)]
        error_cls: ErrorClass = "crashed"
        text = lines[-1] if lines else None
        if bad:
            error_cls, text = "bad_flag", bad[0]
        elif text is not None:
            cls, _ = classify_text(text)
            if cls != "agent_error":
                error_cls = cls
        if text is None:
            text = (
                f"exited with code {exit_code} without completing a turn"
                if exit_code is not None
                else "stopped without completing a turn"
            )
        return AgentOutcome(
            final_text=self.final_text,
            reported_result=False,
            is_error=True,
            error_class=error_cls,
            error_text=text,
            **common,  # type: ignore[arg-type]
        )


def _toml_string(text: str) -> str:
    # A JSON string is a valid TOML basic string for everything json.dumps emits
    # (\n, \", \\ and \uXXXX escapes), and codex parses `-c` values as TOML.
    return json.dumps(text, ensure_ascii=False)


class CodexBackend:
    name = "codex"

    def executable(self, req: AgentRequest) -> str | None:
        return _bin(os.environ)

    def argv(self, req: AgentRequest) -> list[str]:
        # --skip-git-repo-check: `cpo parallel` may run in any directory the user chose;
        # in a task worktree the check would pass anyway.
        args = [_bin(os.environ), "exec", "--json", "--skip-git-repo-check"]
        if req.model:
            args += ["-m", req.model]
        args += ["--sandbox", SANDBOX_POLICY[req.sandbox_mode or "default"]]
        policy = APPROVAL_POLICY[req.approval_mode or "default"]
        if policy:
            args += ["-c", f"approval_policy={_toml_string(policy)}"]
        if req.system_prompt:
            args += ["-c", f"developer_instructions={_toml_string(req.system_prompt)}"]
        return [*args, *req.extra_args, "-"]

    def env(self, req: AgentRequest, base: Mapping[str, str]) -> dict[str, str]:
        return {k: v for k, v in base.items() if k != "CLAUDECODE"}

    def unsupported(self, req: AgentRequest) -> list[str]:
        """Requested options codex cannot honour, one line each (said, never dropped)."""
        notes = []
        if req.max_turns is not None:
            notes.append(f"codex: has no turn limit; max_turns {req.max_turns} is not enforced")
        if req.agent:
            notes.append(f"codex: has no --agent option; agent {req.agent} is ignored")
        if req.permission_mode:
            notes.append(
                f"codex: permission_mode {req.permission_mode} is a claude option, ignored "
                "(use approval_mode / sandbox_mode)"
            )
        return notes

    def preflight(self, reqs: list[AgentRequest], env: Mapping[str, str]) -> list[str]:
        exe = _bin(env)
        if shutil.which(exe, path=env.get("PATH")) is None:
            return [
                f"the codex CLI ({exe!r}) was not found on PATH: install it with "
                f"`{INSTALL_HINT}`, or set CPO_CODEX_BIN to its path"
            ]
        code, text = read_help([exe, "exec", "--help"], env)
        if code != 0:
            return [f"`{exe} exec --help` failed (exit {code}): {shorten(text, 200)}"]
        wanted = [flag for req in reqs for flag in flags_in(self.argv(req))]
        return unknown_flags_problem("codex", f"{exe} exec --help", wanted, text, INSTALL_HINT)

    def parser(self) -> EventParser:
        return CodexParser()


BACKEND = CodexBackend()


def unsupported(req: AgentRequest) -> list[str]:
    """Module-level form, like the claude and command backends'."""
    return BACKEND.unsupported(req)


__all__ = [
    "APPROVAL_FLAGS",
    "BACKEND",
    "SANDBOX_FLAGS",
    "CodexBackend",
    "CodexParser",
    "classify_text",
    "unsupported",
]
