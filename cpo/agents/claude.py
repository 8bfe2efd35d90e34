"""The `claude` backend: Claude Code in print mode, read through its stream-json output.

The shapes handled here come from real captures of Claude Code 2.1.197 (see
`tests/data/claude-cli/`). Two of its habits drive the classification below: an
authentication failure arrives as a `result` whose subtype is "success" but whose
`is_error` is true, and an API failure is announced by an assistant message from the
"<synthetic>" model carrying an `error` field, before the result repeats the text.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field

from cpo.agents.base import AgentEvent, AgentOutcome, AgentRequest, ErrorClass, EventParser
from cpo.agents.claude_agents import unknown_agent_problems
from cpo.agents.common import (
    MAX_FINAL_TEXT,
    AgentCli,
    agent_env,
    classify_error,
    ended_without,
    not_found,
    shorten,
    stderr_lines,
    usage_error,
)
from cpo.agents.jsonsafe import as_dict, as_float, as_int, as_list, as_str
from cpo.agents.modes import HEADLESS_ASK

CLI = AgentCli(
    "claude", env_var="CPO_CLAUDE_BIN", install_hint="npm install -g @anthropic-ai/claude-code"
)
DEFAULT_PERMISSION_MODE = "bypassPermissions"

# The neutral modes (cpo.agents.modes) as claude gets them; rendered in the README.
APPROVAL_FLAGS = {
    "default": "`--permission-mode bypassPermissions` (or `permission_mode` if set)",
    "auto": "`--permission-mode acceptEdits`",
    "none": "`--permission-mode bypassPermissions`",
    "always": f"`--permission-mode default` ({HEADLESS_ASK})",
}
SANDBOX_FLAGS = {
    "default": "nothing",
    "read-only": "not supported: warning (use `permission_mode: plan` for a read-only run)",
    "workspace": "not supported: warning (the task's worktree is its only isolation)",
    "full": "not supported: warning",
}
_APPROVAL_MODE = {"auto": "acceptEdits", "none": "bypassPermissions", "always": "default"}
_AGENT_NOT_FOUND = re.compile(r"--agent '[^']*' not found[^\n]*")
# Lower case: a line is matched case aside (common.usage_error), as codex's and gemini's are.
_BAD_FLAG_MARKERS = (
    "unknown option",
    "requires --verbose",
    "cannot be used with root",
    "allowed choices are",  # a flag value this CLI version does not know
)


def permission_mode(req: AgentRequest) -> tuple[str, list[str]]:
    """The `--permission-mode` for a claude task, and what cannot be honoured.

    An explicit, non-default `approval_mode` wins over a `permission_mode` (the
    backend-neutral option is the one a mixed-backend task file uses); a conflict
    between the two is said.
    """
    notes: list[str] = []
    approval = req.approval_mode or "default"
    mode = req.permission_mode or DEFAULT_PERMISSION_MODE
    if approval != "default":
        mapped = _APPROVAL_MODE[approval]
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


def _content_text(value: object) -> str:
    """A tool_result's content: a string, or a list of {type: text, text} blocks."""
    if isinstance(value, str):
        return value
    parts = [as_str(as_dict(block).get("text")) for block in as_list(value)]
    return "\n".join(p for p in parts if p)


@dataclass
class ClaudeParser:
    """Turns stream-json lines into log lines and actions, and the run into an outcome."""

    cwd: str | None = None
    session_id: str | None = None
    model: str | None = None
    result: dict[str, object] | None = None
    final_text: str | None = None
    # Evidence seen before the result (or instead of it): the synthetic message's error
    # code and text, and the status of the last API retry.
    assistant_error: str | None = None
    assistant_error_text: str | None = None
    retry_status: int | None = None
    turns_seen: int = 0
    fatal_auth: str | None = None
    extra: dict[str, object] = field(default_factory=dict)

    # -- streaming ------------------------------------------------------------------
    def feed(self, line: str) -> list[AgentEvent]:
        stripped = line.strip()
        if not stripped:
            return []
        try:
            data = json.loads(stripped)
        except (ValueError, RecursionError):
            return [AgentEvent(log=line)]
        if not isinstance(data, dict):
            return [AgentEvent(log=line)]
        try:
            return self._event(data)
        except Exception:  # a surprising shape must never stop a task's log
            return [AgentEvent(log=line)]

    def _event(self, data: dict[str, object]) -> list[AgentEvent]:
        kind = data.get("type")
        sid = as_str(data.get("session_id"))
        if sid:
            self.session_id = sid
        if kind == "system":
            return self._system(data)
        if kind == "assistant":
            return self._assistant(data)
        if kind == "user":
            return self._user(data)
        if kind == "result":
            return self._result(data)
        return []

    def _system(self, data: dict[str, object]) -> list[AgentEvent]:
        subtype = data.get("subtype")
        if subtype == "init":
            self.cwd = as_str(data.get("cwd")) or self.cwd
            self.model = as_str(data.get("model")) or self.model
            mode = as_str(data.get("permissionMode"))
            version = as_str(data.get("claude_code_version"))
            bits = [f"model {self.model or '?'}"]
            if mode:
                bits.append(f"mode {mode}")
            if version:
                bits.append(f"claude {version}")
            return [AgentEvent(log=f"session {self.session_id or '?'} ({', '.join(bits)})")]
        if subtype == "api_retry":
            status = as_int(data.get("error_status"))
            self.retry_status = status
            attempt = as_int(data.get("attempt"))
            most = as_int(data.get("max_retries"))
            error = as_str(data.get("error")) or ""
            text = f"API retry {attempt or '?'}/{most or '?'}: {status or '?'} {error}".rstrip()
            if status in (401, 403):
                # The CLI retries a rejected key ~10 times with back-off (minutes); it will
                # not start working: stop now and call it what it is.
                self.fatal_auth = f"the API rejected the credentials (HTTP {status} {error})"
                return [AgentEvent(log=text, action=text, fatal="auth")]
            return [AgentEvent(log=text, action=text)]
        return []

    def _assistant(self, data: dict[str, object]) -> list[AgentEvent]:
        message = as_dict(data.get("message"))
        synthetic = message.get("model") == "<synthetic>"
        error = as_str(data.get("error"))
        events: list[AgentEvent] = []
        if not synthetic:
            self.turns_seen += 1
        for block in as_list(message.get("content")):
            b = as_dict(block)
            if b.get("type") == "text":
                text = as_str(b.get("text")) or ""
                if error or synthetic:
                    self.assistant_error_text = text
                else:
                    self.final_text = text[-MAX_FINAL_TEXT:]
                if text.strip():
                    events.append(AgentEvent(log=text))
            elif b.get("type") == "tool_use":
                action = self._action(as_str(b.get("name")) or "tool", as_dict(b.get("input")))
                events.append(AgentEvent(log=f"→ {action}", action=action))
        if error:
            self.assistant_error = error
        return events

    def _user(self, data: dict[str, object]) -> list[AgentEvent]:
        events: list[AgentEvent] = []
        for block in as_list(as_dict(data.get("message")).get("content")):
            b = as_dict(block)
            if b.get("type") == "tool_result" and b.get("is_error") is True:
                text = shorten(_content_text(b.get("content")), 300)
                events.append(AgentEvent(log=f"tool error: {text}"))
        return events

    def _result(self, data: dict[str, object]) -> list[AgentEvent]:
        self.result = data
        turns = as_int(data.get("num_turns"))
        cost = as_float(data.get("total_cost_usd"))
        summary = f"{turns if turns is not None else '?'} turns"
        if cost is not None:
            summary += f", ${cost:.4f}"
        if data.get("is_error") is True:
            text = self._result_text(data) or str(data.get("subtype") or "error")
            return [AgentEvent(log=f"result: error ({summary}): {text}")]
        return [AgentEvent(log=f"result: {data.get('subtype') or 'done'} ({summary})")]

    def _relpath(self, path: str) -> str:
        if self.cwd and path.startswith(self.cwd.rstrip("/") + "/"):
            return path[len(self.cwd.rstrip("/")) + 1 :]
        return path

    def _action(self, name: str, args: dict[str, object]) -> str:
        path = as_str(args.get("file_path")) or as_str(args.get("notebook_path"))
        if path:
            return shorten(f"{name} {self._relpath(path)}")
        for key in ("command", "description", "pattern", "url", "query", "prompt"):
            value = as_str(args.get(key))
            if value:
                return shorten(f"{name}: {value}")
        return shorten(name)

    @staticmethod
    def _result_text(data: dict[str, object]) -> str | None:
        text = as_str(data.get("result"))
        if text:
            return text
        errors = [e for e in as_list(data.get("errors")) if isinstance(e, str)]
        return "; ".join(errors) or None

    # -- end of run -----------------------------------------------------------------
    def finish(self, exit_code: int | None, stderr_tail: str) -> AgentOutcome:
        res = self.result
        if res is None:
            return self._no_result(exit_code, stderr_tail)
        usage = as_dict(res.get("usage"))
        is_error = res.get("is_error") is True
        text = self._result_text(res)
        error_class: ErrorClass | None = None
        reset_at: float | None = None
        if is_error:
            error_class, reset_at = self._classify(res, text or "")
        extra = dict(self.extra)
        for key in ("cache_read_input_tokens", "cache_creation_input_tokens"):
            if as_int(usage.get(key)):
                extra[key] = usage[key]
        if self.model:
            extra["model"] = self.model
        return AgentOutcome(
            final_text=text if not is_error else self.final_text,
            reported_result=True,
            is_error=is_error,
            error_class=error_class,
            error_text=(text or str(res.get("subtype") or "error")) if is_error else None,
            session_id=as_str(res.get("session_id")) or self.session_id,
            num_turns=as_int(res.get("num_turns")),
            input_tokens=as_int(usage.get("input_tokens")),
            output_tokens=as_int(usage.get("output_tokens")),
            cost_usd=as_float(res.get("total_cost_usd")),
            reset_at=reset_at,
            extra=extra,
        )

    def _classify(self, res: dict[str, object], text: str) -> tuple[ErrorClass, float | None]:
        if res.get("subtype") == "error_max_turns":
            return "max_turns", None
        return classify_error(
            text + "\n" + (self.assistant_error_text or ""),
            status=as_int(res.get("api_error_status")) or self.retry_status,
            code=self.assistant_error,
        )

    def _no_result(self, exit_code: int | None, stderr_tail: str) -> AgentOutcome:
        if self.fatal_auth:
            return AgentOutcome(
                is_error=True,
                error_class="auth",
                error_text=self.fatal_auth,
                session_id=self.session_id,
                extra=dict(self.extra),
            )
        if exit_code == 0 and not self.assistant_error:
            # The success rule (README, `cpo run` step 4): the result counts "when it
            # reports one"; a clean exit without one is left to the marker check.
            return AgentOutcome(
                final_text=self.final_text,
                session_id=self.session_id,
                num_turns=self.turns_seen or None,
                extra=dict(self.extra),
            )
        error_class: ErrorClass = "crashed"
        reset_at: float | None = None
        lines = stderr_lines(stderr_tail)
        text = lines[-1] if lines else None
        bad = usage_error(lines, _BAD_FLAG_MARKERS)
        missing_agent = _AGENT_NOT_FOUND.search(stderr_tail)
        if bad is not None:
            error_class, text = "bad_flag", bad
        elif missing_agent:
            error_class, text = "agent_error", missing_agent.group(0).strip()
        elif self.assistant_error:
            # The synthetic error message came but the result never did (killed meanwhile).
            evidence = self.assistant_error_text or self.assistant_error
            error_class, reset_at = classify_error(
                evidence, status=self.retry_status, code=self.assistant_error
            )
            text = evidence
        if text is None:
            text = ended_without("a final result", exit_code)
        return AgentOutcome(
            final_text=self.final_text,
            reported_result=False,
            is_error=True,
            error_class=error_class,
            error_text=text,
            session_id=self.session_id,
            num_turns=self.turns_seen or None,
            reset_at=reset_at,
            extra=dict(self.extra),
        )


class ClaudeBackend:
    name = "claude"
    resumes = True

    def executable(self, req: AgentRequest) -> str | None:
        return CLI.bin(os.environ)

    def argv(self, req: AgentRequest) -> list[str]:
        args = [
            CLI.bin(os.environ),
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--permission-mode",
            permission_mode(req)[0],
        ]
        if req.model:
            args += ["--model", req.model]
        if req.max_turns is not None:
            args += ["--max-turns", str(req.max_turns)]
        if req.agent:
            args += ["--agent", req.agent]
        if req.resume:  # the same session id goes on (no --fork-session)
            args += ["--resume", req.resume]
        args += ["--append-system-prompt", req.system_prompt]
        return args + list(req.extra_args)

    def env(self, req: AgentRequest, base: Mapping[str, str]) -> dict[str, str]:
        return agent_env(base)

    def unsupported(self, req: AgentRequest) -> list[str]:
        """Requested options claude cannot honour (e.g. a sandbox_mode), one line each."""
        return permission_mode(req)[1]

    def preflight(self, reqs: list[AgentRequest], env: Mapping[str, str]) -> list[str]:
        problems: list[str] = []
        exe = CLI.bin(env) if CLI.env_var in env else CLI.bin(os.environ)
        if shutil.which(exe, path=env.get("PATH")) is None:
            via_var = bool(env.get(CLI.env_var) or os.environ.get(CLI.env_var))
            problems.append(
                not_found("claude", exe, CLI.env_var, CLI.install_hint, via_var=via_var)
            )
        bypass = any(
            permission_mode(r)[0] == "bypassPermissions"
            or "--dangerously-skip-permissions" in r.extra_args
            for r in reqs
        )
        if bypass and _is_root() and env.get("IS_SANDBOX") != "1":
            problems.append(
                "running as root with --permission-mode bypassPermissions: the claude CLI "
                "refuses that as root/sudo; if this machine is a sandbox run "
                "`export IS_SANDBOX=1`, otherwise use `--permission-mode acceptEdits`"
            )
        return problems + unknown_agent_problems(reqs, env)

    def parser(self) -> EventParser:
        return ClaudeParser()


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


BACKEND = ClaudeBackend()

__all__ = [
    "APPROVAL_FLAGS",
    "BACKEND",
    "SANDBOX_FLAGS",
    "ClaudeBackend",
    "ClaudeParser",
    "permission_mode",
]
