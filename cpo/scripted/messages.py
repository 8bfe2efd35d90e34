"""What the scripted `claude` prints: the record shapes and fixed texts of the real CLI.

Everything here was observed with Claude Code 2.1.197 (the captures in tests/data/
claude-cli/ and the contract suite tests/real_claude/test_fake_vs_real.py); the
behaviour that decides *when* to print what lives in cpo.scripted.agent.
"""

from __future__ import annotations

import os
import random
import string
import urllib.parse
import uuid
from datetime import datetime, timezone
from pathlib import Path

VERSION = "2.1.197"
MODEL = "claude-opus-4-8"
BUILTIN_AGENTS = ("claude", "Explore", "general-purpose", "Plan", "statusline-setup")
TOOLS = ["Task", "Bash", "CronCreate", "CronDelete", "CronList", "Edit", "EnterWorktree",
         "ExitWorktree", "NotebookEdit", "Read", "ReportFindings", "ScheduleWakeup",
         "SendMessage", "Skill", "TaskCreate", "TaskGet", "TaskList", "TaskOutput", "TaskStop",
         "TaskUpdate", "WebFetch", "WebSearch", "Workflow", "Write"]  # fmt: skip
SKILLS = ["deep-research", "update-config", "verify", "debug", "code-review", "simplify",
          "batch", "fewer-permission-prompts", "loop", "claude-api", "run",
          "run-skill-generator"]  # fmt: skip
COMMANDS = ["clear", "compact", "config", "context", "heapdump", "init", "reload-skills",
            "review", "security-review", "usage", "insights", "goal",
            "team-onboarding"]  # fmt: skip
# The result record's usage (the result always has every field, zeroed).
USAGE0 = {"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
          "output_tokens": 0, "server_tool_use": {"web_search_requests": 0,
          "web_fetch_requests": 0}, "service_tier": "standard", "cache_creation":
          {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0},
          "inference_geo": "", "iterations": [], "speed": "standard"}  # fmt: skip
# A synthetic (error) assistant message's usage: same fields, but nulls where unknown.
_SYNTHETIC_USAGE = dict(USAGE0, service_tier=None, inference_geo=None, iterations=None,
                        speed=None)  # fmt: skip
# Per-turn accounting, chosen so totals match the scripted captures (4 turns: 4000 in,
# 200 out, $0.025).
TURN_IN, TURN_OUT, TURN_COST = 1000, 50, 0.00625

# -- fixed texts ---------------------------------------------------------------------
NOT_LOGGED_IN = "Not logged in · Please run /login"
INVALID_KEY = "Invalid API key · Fix external API key"
_DONT_ASK = (
    "Permission to use {tool} has been denied because Claude Code is running in don't ask "
    "mode. IMPORTANT: You *may* attempt to accomplish this action using other tools that "
    "might naturally be used to accomplish this goal, e.g. using head instead of cat. But you "
    "*should not* attempt to work around this denial in malicious ways, e.g. do not use your "
    "ability to run tests to execute non-test actions. You should only try to work around "
    "this restriction in reasonable ways that do not attempt to bypass the intent behind this "
    "denial. If you believe this capability is essential to complete the user's request, STOP "
    "and explain to the user what you were trying to do and why you need this permission. Let "
    "the user decide how to proceed."
)
# The `error` of an api_retry record by HTTP status; every other retried status (408,
# 409, 5xx observed) says "server_error".
_RETRY_ERRORS = {401: "authentication_failed", 429: "rate_limit", 529: "overloaded"}


def overloaded_text() -> str:
    """The persistent-529 message; with a gateway it names the gateway's host:port."""
    text = (
        "API Error: 529 Overloaded. This is a server-side issue, usually temporary — "
        "try again in a moment."
    )
    base = os.environ.get("ANTHROPIC_BASE_URL")
    host = urllib.parse.urlsplit(base).netloc.rpartition("@")[2] if base else ""
    return f"{text} If it persists, check your inference gateway ({host})." if host else text


def retry_error(status: int) -> str:
    return _RETRY_ERRORS.get(status, "server_error")


def write_denied(mode: str, path: Path) -> str | None:
    """Why a Write is refused in `mode`, or None when it is allowed."""
    if mode == "dontAsk":
        return _DONT_ASK.format(tool="Write")
    if mode == "plan":
        return f"Cannot write to {path} while in plan mode."
    if mode == "default":
        return f"Claude requested permissions to write to {path}, but you haven't granted it yet."
    return None


def bash_denied(mode: str, parts: list[str]) -> str | None:
    """Why a Bash command (its `&&`/`;` parts) is refused; None when it runs.

    Only commands that change things are modelled (the scripted Bash is `git commit`), and
    print mode approves none of those short of bypassPermissions."""
    if mode == "bypassPermissions":
        return None
    if mode == "dontAsk":
        return _DONT_ASK.format(tool="Bash")
    if len(parts) > 1:
        return (
            "This Bash command contains multiple operations. The following parts require "
            f"approval: {', '.join(parts)}"
        )
    return "This command requires approval"


# -- records ---------------------------------------------------------------------------
def new_uuid() -> str:
    return str(uuid.uuid4())


def request_id() -> str:
    """An id like the API's `request-id` header (the real CLI copies it onto records)."""
    return "req_011C" + "".join(random.choices(string.ascii_letters + string.digits, k=20))


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def init_record(
    session_id: str, cwd: Path, model: str, mode: str, agents: list[str]
) -> dict[str, object]:
    project = "".join(c if c.isascii() and c.isalnum() else "-" for c in str(cwd))
    return {
        "type": "system",
        "subtype": "init",
        "cwd": str(cwd),
        "session_id": session_id,
        "tools": TOOLS,
        "mcp_servers": [],
        "model": f"{model}[1m]" if model == MODEL else model,
        "permissionMode": mode,
        "slash_commands": SKILLS + COMMANDS,
        "apiKeySource": "ANTHROPIC_API_KEY" if os.environ.get("ANTHROPIC_API_KEY") else "none",
        "claude_code_version": VERSION,
        "output_style": "default",
        "agents": agents,
        "skills": SKILLS,
        "plugins": [],
        "analytics_disabled": True,
        "product_feedback_disabled": True,
        "uuid": new_uuid(),
        "memory_paths": {"auto": f"{Path.home()}/.claude/projects/{project}/memory/"},
        "fast_mode_state": "off",
    }


def assistant_record(
    session_id: str, model: str, content: dict[str, object], *, request: str | None
) -> dict[str, object]:
    """A model turn (one content block); `request` is the API request id."""
    message: dict[str, object] = {
        "id": "msg_scripted",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [content],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": TURN_IN,
            "output_tokens": 1,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
        "context_management": None,
    }
    return _assistant(session_id, message, error=None, request=request)


def synthetic_record(
    session_id: str, text: str, error: str, *, request: str | None
) -> dict[str, object]:
    """The CLI's own error message, shaped as an assistant turn of model `<synthetic>`.

    `request` is the id of the failed API request (None when no request was made)."""
    message: dict[str, object] = {
        "id": new_uuid(),
        "container": None,
        "model": "<synthetic>",
        "role": "assistant",
        "stop_details": None,
        "stop_reason": "stop_sequence",
        "stop_sequence": "",
        "type": "message",
        "usage": _SYNTHETIC_USAGE,
        "content": [{"type": "text", "text": text}],
        "context_management": None,
    }
    return _assistant(session_id, message, error=error, request=request)


def _assistant(
    session_id: str, message: dict[str, object], *, error: str | None, request: str | None
) -> dict[str, object]:
    obj: dict[str, object] = {
        "type": "assistant",
        "message": message,
        "parent_tool_use_id": None,
        "session_id": session_id,
        "uuid": new_uuid(),
    }
    if error:
        obj["error"] = error
    if request:
        obj["request_id"] = request
    return obj


def tool_result_record(
    session_id: str, block: dict[str, object], detail: object
) -> dict[str, object]:
    return {
        "type": "user",
        "message": {"role": "user", "content": [block]},
        "parent_tool_use_id": None,
        "session_id": session_id,
        "uuid": new_uuid(),
        "timestamp": now(),
        "tool_use_result": detail,
    }


def api_retry_record(
    session_id: str, attempt: int, max_retries: int, delay_ms: float, status: int
) -> dict[str, object]:
    return {
        "type": "system",
        "subtype": "api_retry",
        "attempt": attempt,
        "max_retries": max_retries,
        "retry_delay_ms": delay_ms,
        "error_status": status,
        "error": retry_error(status),
        "session_id": session_id,
        "uuid": new_uuid(),
    }


def result_record(
    session_id: str,
    model: str,
    text: str,
    *,
    ms: int,
    turns: int,
    is_error: bool,
    status: int | None,
    api: bool,
    denials: list[dict[str, object]],
) -> dict[str, object]:
    """The final record; `api=False` for failures before any model answered (cost 0)."""
    obj: dict[str, object] = {
        "type": "result",
        "subtype": "success",
        "is_error": is_error,
        "api_error_status": status,
        "duration_ms": ms,
        "duration_api_ms": ms if api else 0,
    }
    if api:  # the real CLI reports latencies only when the model answered
        obj.update(ttft_ms=1, ttft_stream_ms=1, time_to_request_ms=1)
    obj.update(
        {
            "num_turns": turns,
            "result": text,
            "stop_reason": "end_turn" if api else "stop_sequence",
            "session_id": session_id,
            **usage_fields(model, turns if api else 0),
            "permission_denials": denials,
            "terminal_reason": "completed",
            "fast_mode_state": "off",
            "uuid": new_uuid(),
        }
    )
    return obj


def max_turns_record(
    session_id: str,
    model: str,
    limit: int,
    *,
    ms: int,
    turns: int,
    denials: list[dict[str, object]],
) -> dict[str, object]:
    return {
        "type": "result",
        "subtype": "error_max_turns",
        "duration_ms": ms,
        "duration_api_ms": 0,
        "is_error": True,
        "num_turns": turns,
        "stop_reason": "tool_use",
        "session_id": session_id,
        **usage_fields(model, turns),
        "permission_denials": denials,
        "terminal_reason": "max_turns",
        "fast_mode_state": "off",
        "uuid": new_uuid(),
        "errors": [f"Reached maximum number of turns ({limit})"],
    }


def usage_fields(model: str, turns: int) -> dict[str, object]:
    """The result's cost and usage after `turns` model calls (0: none were made)."""
    cost = round(turns * TURN_COST, 6)
    model_usage = (
        {
            f"{model}[1m]": {
                "inputTokens": turns * TURN_IN,
                "outputTokens": turns * TURN_OUT,
                "cacheReadInputTokens": 0,
                "cacheCreationInputTokens": 0,
                "webSearchRequests": 0,
                "costUSD": cost,
                "contextWindow": 1000000,
                "maxOutputTokens": 64000,
            }
        }
        if turns
        else {}
    )
    usage = dict(USAGE0, input_tokens=turns * TURN_IN, output_tokens=turns * TURN_OUT)
    return {"total_cost_usd": cost, "usage": usage, "modelUsage": model_usage}


def no_conversation_record(session_id: str, message: str) -> dict[str, object]:
    """`--resume <id>` of a session this project does not have (Claude Code 2.1.197)."""
    return {
        "type": "result",
        "subtype": "error_during_execution",
        "duration_ms": 0,
        "duration_api_ms": 0,
        "is_error": True,
        "num_turns": 0,
        "stop_reason": None,
        "session_id": session_id,
        **usage_fields(MODEL, 0),
        "permission_denials": [],
        "uuid": new_uuid(),
        "errors": [message],
    }
