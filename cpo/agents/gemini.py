"""The `gemini` backend: Google Gemini CLI in headless `--output-format stream-json` mode.

The stream is one JSON event per line, each with `type` and `timestamp`: `init`
(session_id, model), `message` (role user|assistant, content, `delta` for chunks),
`tool_use` (tool_name, tool_id, parameters), `tool_result` (tool_id, status
success|error, output or error), `error` (severity warning|error, message) and a final
`result` (status success|error, error {type, message}, stats {total_tokens,
input_tokens, output_tokens, cached, input, duration_ms, tool_calls}).

Exit codes: 0 ok, 1 general/API error, 41 authentication, 42 bad input, 44 sandbox,
52 settings, 53 turn limit, 54 tool execution, 55 untrusted folder, 130 cancelled.

The prompt goes on stdin; gemini appends its `-p` text after stdin, so `-p` carries
cpo's completion protocol (gemini has no "append to the system prompt" option).
A task's worktree is a folder gemini has never seen; with folder trust on it would
refuse it (exit 55), so `GEMINI_CLI_TRUST_WORKSPACE=true` is set (unless the user set
it), and `--skip-trust` is added with `--sandbox`, whose re-exec does not keep the env.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

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
from cpo.agents.jsonsafe import JsonLinesParser, as_dict, as_int, as_str

CLI = AgentCli("gemini", env_var="CPO_GEMINI_BIN", install_hint="npm install -g @google/gemini-cli")
TRUST_ENV = "GEMINI_CLI_TRUST_WORKSPACE"
DEFAULT_TAIL_PROMPT = "Carry out the task described above."

APPROVAL_MODE = {"default": "yolo", "auto": "auto_edit", "none": "yolo", "always": "default"}
APPROVAL_FLAGS = {
    "default": "`--approval-mode yolo` (headless gemini cannot edit otherwise)",
    "auto": "`--approval-mode auto_edit`",
    "none": "`--approval-mode yolo`",
    "always": "`--approval-mode default` (headless: a tool that needs approval is refused)",
}
SANDBOX_FLAGS = {
    "default": "nothing",
    "read-only": "`--approval-mode plan` (replaces the approval mode: warning if one was set)",
    "workspace": "`--sandbox --skip-trust` (needs docker, podman or macOS seatbelt)",
    "full": "`--sandbox=false`",
}

EXIT_CLASSES: dict[int, tuple[ErrorClass, str]] = {
    41: ("auth", "gemini could not authenticate (exit 41)"),
    42: ("bad_flag", "gemini rejected its input or arguments (exit 42)"),
    44: ("agent_error", "gemini's sandbox failed (exit 44)"),
    52: ("agent_error", "gemini's settings.json is invalid (exit 52)"),
    53: ("max_turns", "gemini reached its session turn limit (exit 53)"),
    54: ("agent_error", "a gemini tool failed fatally (exit 54)"),
    55: (
        "agent_error",
        f"gemini refused an untrusted folder (exit 55): set {TRUST_ENV}=true or pass --skip-trust",
    ),
}
_ERROR_TYPES: dict[str, ErrorClass] = {
    "FatalAuthenticationError": "auth",
    "FatalTurnLimitedError": "max_turns",
    "FatalInputError": "bad_flag",
}
_BAD_FLAG = ("unknown argument", "invalid values", "not enough arguments", "cannot use both")


def _approval_mode(req: AgentRequest) -> str:
    if (req.sandbox_mode or "default") == "read-only":
        return "plan"
    return APPROVAL_MODE[req.approval_mode or "default"]


@dataclass
class GeminiParser(JsonLinesParser):
    """stream-json lines → log lines and actions; the run → an outcome."""

    session_id: str | None = None
    model: str | None = None
    text: str = ""  # assistant text since the last tool call
    final_text: str | None = None
    result: dict[str, object] | None = None
    last_error: str | None = None
    tool_calls: int = 0

    def _flush(self) -> list[AgentEvent]:
        if not self.text.strip():
            return []
        self.final_text = self.text[-MAX_FINAL_TEXT:]
        text, self.text = self.text, ""
        return [AgentEvent(log=text)]

    def _event(self, data: dict[str, object]) -> list[AgentEvent]:
        kind = data.get("type")
        if kind == "init":
            self.session_id = as_str(data.get("session_id")) or self.session_id
            self.model = as_str(data.get("model")) or self.model
            return [AgentEvent(log=f"session {self.session_id or '?'} (model {self.model or '?'})")]
        if kind == "message":
            if data.get("role") == "assistant":
                content = as_str(data.get("content")) or ""
                self.text = self.text + content if data.get("delta") is True else content
                self.final_text = self.text[-MAX_FINAL_TEXT:] if self.text.strip() else None
            return []
        events = self._flush()
        if kind == "tool_use":
            self.tool_calls += 1
            action = self._action(
                as_str(data.get("tool_name")) or "tool", as_dict(data.get("parameters"))
            )
            self.final_text = None  # the final answer is what comes after the last tool
            return [*events, AgentEvent(log=f"→ {action}", action=action)]
        if kind == "tool_result":
            if data.get("status") == "error":
                err = as_dict(data.get("error"))
                text = as_str(err.get("message")) or as_str(data.get("output")) or "error"
                events.append(AgentEvent(log=f"tool error: {shorten(text, 300)}"))
            return events
        if kind == "error":
            message = as_str(data.get("message")) or "error"
            severity = as_str(data.get("severity")) or "error"
            if severity == "error":
                self.last_error = message
            return [*events, AgentEvent(log=f"{severity}: {message}", action=shorten(message))]
        if kind == "result":
            self.result = data
            stats = as_dict(data.get("stats"))
            summary = f"{as_int(stats.get('tool_calls')) or 0} tool calls"
            if data.get("status") == "error":
                err = as_dict(data.get("error"))
                return [*events, AgentEvent(log=f"result: error ({summary}): {err.get('message')}")]
            return [*events, AgentEvent(log=f"result: success ({summary})")]
        return events

    @staticmethod
    def _action(name: str, params: dict[str, object]) -> str:
        for key in ("file_path", "absolute_path", "path", "dir_path"):
            value = as_str(params.get(key))
            if value:
                return path_action(name, value)
        for key in ("command", "pattern", "query", "url", "prompt"):
            value = as_str(params.get(key))
            if value:
                return shorten(f"{name}: {value}")
        return shorten(name)

    def finish(self, exit_code: int | None, stderr_tail: str) -> AgentOutcome:
        self._flush()
        res = self.result
        stats = as_dict(res.get("stats")) if res else {}
        seen = AgentOutcome(
            final_text=self.final_text,
            reported_result=res is not None,
            session_id=self.session_id,
            input_tokens=as_int(stats.get("input_tokens")),
            output_tokens=as_int(stats.get("output_tokens")),
            extra={k: stats[k] for k in ("cached", "duration_ms", "tool_calls") if k in stats}
            | ({"model": self.model} if self.model else {}),
        )
        if res is not None and res.get("status") == "success" and exit_code in (0, None):
            return seen
        error_class: ErrorClass = "crashed"
        reset_at: float | None = None
        text: str | None = None
        if res is not None and res.get("status") == "error":
            err = as_dict(res.get("error"))
            text = as_str(err.get("message")) or as_str(err.get("type")) or "error"
            typed = _ERROR_TYPES.get(as_str(err.get("type")) or "")
            error_class, reset_at = (typed, None) if typed else classify_error(text)
        lines = stderr_lines(stderr_tail)
        bad = usage_error(lines, _BAD_FLAG)
        if exit_code in EXIT_CLASSES and (
            text is None or error_class in ("crashed", "agent_error")
        ):
            error_class, said = EXIT_CLASSES[exit_code]
            text = f"{said}: {lines[-1]}" if lines else said
        elif text is None and bad is not None:
            error_class, text = "bad_flag", bad
        elif text is None and self.last_error:
            text = self.last_error
            error_class, reset_at = classify_error(text)
        elif text is None and lines:
            cls, text, reset_at = classify_stderr(lines)
            error_class = cls or "crashed"
        if text is None:
            text = ended_without("a final result", exit_code)
        return replace(
            seen, is_error=True, error_class=error_class, error_text=text, reset_at=reset_at
        )


class GeminiBackend:
    name = "gemini"
    resumes = True

    def executable(self, req: AgentRequest) -> str | None:
        return CLI.bin(os.environ)

    def argv(self, req: AgentRequest) -> list[str]:
        args = [CLI.bin(os.environ), "--output-format", "stream-json"]
        args += ["-p", req.system_prompt or DEFAULT_TAIL_PROMPT]
        if req.model:
            args += ["-m", req.model]
        args += ["--approval-mode", _approval_mode(req)]
        sandbox = req.sandbox_mode or "default"
        if sandbox == "workspace":
            args += ["--sandbox", "--skip-trust"]
        elif sandbox == "full":
            args += ["--sandbox=false"]
        if req.resume:  # `gemini -r <session id>`: the session of that id, in this project
            args += ["--resume", req.resume]
        return [*args, *req.extra_args]

    def env(self, req: AgentRequest, base: Mapping[str, str]) -> dict[str, str]:
        env = agent_env(base)
        env.setdefault(TRUST_ENV, "true")
        return env

    def unsupported(self, req: AgentRequest) -> list[str]:
        """Requested options gemini cannot honour, one line each (said, never dropped)."""
        notes = []
        approval = req.approval_mode or "default"
        if (req.sandbox_mode or "default") == "read-only" and approval != "default":
            notes.append(
                f"gemini: sandbox_mode read-only is --approval-mode plan, which replaces "
                f"approval_mode {approval}"
            )
        if req.max_turns is not None:
            notes.append(
                f"gemini: has no turn-limit option; max_turns {req.max_turns} is not enforced "
                "(set model.maxSessionTurns in ~/.gemini/settings.json)"
            )
        return notes + claude_options_ignored("gemini", req)

    def preflight(self, reqs: list[AgentRequest], env: Mapping[str, str]) -> list[str]:
        # flags, and the choices this run needs from them
        wanted = [
            word
            for req in reqs
            for word in [*flags_in(self.argv(req)), "stream-json", _approval_mode(req)]
        ]
        return CLI.check(["--help"], wanted, env)

    def parser(self) -> EventParser:
        return GeminiParser()


BACKEND = GeminiBackend()


__all__ = [
    "APPROVAL_FLAGS",
    "BACKEND",
    "SANDBOX_FLAGS",
    "GeminiBackend",
    "GeminiParser",
]
