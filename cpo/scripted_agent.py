"""A scripted stand-in for the `claude` CLI, for tests and `cpo demo`.

Run as `python -m cpo.scripted_agent <claude flags>` (or through `install_shim`). It
obeys the flag rules of Claude Code 2.1.197 and prints stream-json shaped like the real
captures in tests/data/claude-cli/, but instead of a model it follows directives found
in the prompt, one per line: `@script <verb> [args]` (see `_VERBS` and the README).
With no directives it writes the completion marker and answers "Done.".

Permission modes behave as in the real CLI in print mode: `default`, `plan` and
`dontAsk` deny every tool, `acceptEdits` denies Bash (so `commit`), and
`bypassPermissions` allows everything.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import NoReturn

VERSION = "2.1.197"
MODEL = "claude-opus-4-8"
MARKER = ".claude-task-complete"
DEFAULT_AGENTS = "claude,Explore,general-purpose,Plan,statusline-setup"
_VALUE_FLAGS = {"--output-format", "--permission-mode", "--model", "--max-turns", "--agent",
                "--append-system-prompt", "--system-prompt"}  # fmt: skip
_BOOL_FLAGS = {"-p", "--print", "--verbose", "--dangerously-skip-permissions", "--version", "-v"}
_CHOICES = {
    "--output-format": ("text", "json", "stream-json"),
    "--permission-mode": ("acceptEdits", "bypassPermissions", "default", "dontAsk", "plan"),
}
_DIRECTIVE = re.compile(r"^\s*@script\s+([\w-]+)[ \t]*(.*?)\s*$", re.MULTILINE)
_TOOLS = ["Task", "Bash", "CronCreate", "CronDelete", "CronList", "Edit", "EnterWorktree",
          "ExitWorktree", "NotebookEdit", "Read", "ReportFindings", "ScheduleWakeup",
          "SendMessage", "Skill", "TaskCreate", "TaskGet", "TaskList", "TaskOutput", "TaskStop",
          "TaskUpdate", "WebFetch", "WebSearch", "Workflow", "Write"]  # fmt: skip
_SKILLS = ["deep-research", "update-config", "verify", "debug", "code-review", "simplify",
           "batch", "fewer-permission-prompts", "loop", "claude-api", "run",
           "run-skill-generator"]  # fmt: skip
_COMMANDS = ["clear", "compact", "config", "context", "heapdump", "init", "reload-skills",
             "review", "security-review", "usage", "insights", "goal",
             "team-onboarding"]  # fmt: skip
_USAGE0 = {"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
           "output_tokens": 0, "server_tool_use": {"web_search_requests": 0,
           "web_fetch_requests": 0}, "service_tier": "standard", "cache_creation":
           {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0},
           "inference_geo": "", "iterations": [], "speed": "standard"}  # fmt: skip
_OVERLOADED_TEXT = (
    "API Error: 529 Overloaded. This is a server-side issue, usually temporary — "
    "try again in a moment."
)
# Per-turn accounting, chosen so totals match the scripted captures (4 turns: 4000 in,
# 200 out, $0.025).
_IN, _OUT, _COST = 1000, 50, 0.00625


class Stop(Exception):
    """Ends the run with an exit code (control flow, not an error)."""

    def __init__(self, code: int) -> None:
        self.code = code


def _fail(message: str) -> NoReturn:
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
            if not eq:
                if i >= len(argv):
                    _fail(f"error: option '{name} <value>' argument missing")
                value, i = argv[i], i + 1
            allowed = _CHOICES.get(name)
            if allowed and value not in allowed:
                _fail(
                    f"error: option '{name} <value>' argument '{value}' is invalid. "
                    f"Allowed choices are {', '.join(allowed)}."
                )
            opts[name] = value
        elif name in _BOOL_FLAGS and not eq:
            opts[name] = True
        else:
            _fail(f"error: unknown option '{name}'")
    return opts, positional


class Session:
    """One scripted run: emits the messages and carries out the directives."""

    def __init__(self, opts: dict[str, str | bool], cwd: Path) -> None:
        self.opts = opts
        self.cwd = cwd
        self.fmt = str(opts.get("--output-format", "text"))
        self.mode = str(
            opts.get("--permission-mode")
            or ("bypassPermissions" if opts.get("--dangerously-skip-permissions") else "default")
        )
        turns = opts.get("--max-turns")
        self.max_turns = int(turns) if isinstance(turns, str) and turns.isdigit() else None
        self.model = str(opts.get("--model") or MODEL)
        self.session_id = str(uuid.uuid4())
        self.start = time.monotonic()
        self.turns = 0
        self.tool_count = 0
        self.denials: list[dict[str, object]] = []
        self.last_text: str | None = None

    # -- output ---------------------------------------------------------------------
    def emit(self, obj: dict[str, object]) -> None:
        if self.fmt == "stream-json":
            _write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))

    def _assistant(self, content: dict[str, object], *, error: str | None = None) -> None:
        synthetic = error is not None
        message: dict[str, object] = {
            "id": str(uuid.uuid4()) if synthetic else "msg_scripted",
            "type": "message",
            "role": "assistant",
            "model": "<synthetic>" if synthetic else self.model,
            "content": [content],
            "stop_reason": "stop_sequence" if synthetic else None,
            "stop_sequence": "" if synthetic else None,
            "usage": _USAGE0
            if synthetic
            else {
                "input_tokens": _IN,
                "output_tokens": 1,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
            "context_management": None,
        }
        obj: dict[str, object] = {
            "type": "assistant",
            "message": message,
            "parent_tool_use_id": None,
            "session_id": self.session_id,
            "uuid": str(uuid.uuid4()),
        }
        if error:
            obj["error"] = error
        self.emit(obj)

    def init(self) -> None:
        project = re.sub(r"[^A-Za-z0-9]", "-", str(self.cwd))
        self.emit(
            {
                "type": "system",
                "subtype": "init",
                "cwd": str(self.cwd),
                "session_id": self.session_id,
                "tools": _TOOLS,
                "mcp_servers": [],
                "model": f"{self.model}[1m]" if self.model == MODEL else self.model,
                "permissionMode": self.mode,
                "slash_commands": _SKILLS + _COMMANDS,
                "apiKeySource": "ANTHROPIC_API_KEY"
                if os.environ.get("ANTHROPIC_API_KEY")
                else "none",
                "claude_code_version": VERSION,
                "output_style": "default",
                "agents": _agents(),
                "skills": _SKILLS,
                "plugins": [],
                "analytics_disabled": True,
                "product_feedback_disabled": True,
                "uuid": str(uuid.uuid4()),
                "memory_paths": {"auto": f"{Path.home()}/.claude/projects/{project}/memory/"},
                "fast_mode_state": "off",
            }
        )

    def text(self, text: str) -> None:
        self.last_text = text
        self._assistant({"type": "text", "text": text})

    def tool(
        self,
        name: str,
        args: dict[str, object],
        run: Callable[[], tuple[str, bool, object]],
        *,
        denied_text: str | None = None,
    ) -> bool:
        """One tool-use turn; returns whether the tool ran without error."""
        self.turns += 1
        tool_id = f"toolu_{self.tool_count:04d}_{uuid.uuid4().int % 10**8:08d}"
        self.tool_count += 1
        self._assistant({"type": "tool_use", "id": tool_id, "name": name, "input": args})
        detail: object
        if denied_text is not None:
            output, is_error, detail = denied_text, True, f"Error: {denied_text}"
            self.denials.append({"tool_name": name, "tool_use_id": tool_id, "tool_input": args})
        else:
            output, is_error, detail = run()
        block: dict[str, object] = {
            "tool_use_id": tool_id,
            "type": "tool_result",
            "content": output,
        }
        if is_error or name == "Bash":
            block["is_error"] = is_error
        self.emit(
            {
                "type": "user",
                "message": {"role": "user", "content": [block]},
                "parent_tool_use_id": None,
                "session_id": self.session_id,
                "uuid": str(uuid.uuid4()),
                "timestamp": _now(),
                "tool_use_result": detail,
            }
        )
        if self.max_turns is not None and self.turns >= self.max_turns:
            self.max_turns_result()
        return not is_error

    def result(
        self, text: str, *, is_error: bool = False, status: int | None = None, api: bool = True
    ) -> NoReturn:
        """The final record; `api=False` for failures before any model call (cost 0)."""
        turns = self.turns + 1 if api else 1
        obj: dict[str, object] = {
            "type": "result",
            "subtype": "success",
            "is_error": is_error,
            "api_error_status": status,
            "duration_ms": self._ms(),
            "duration_api_ms": self._ms() if api else 0,
        }
        if api:  # the real CLI reports latencies only when the model answered
            obj.update(ttft_ms=1, ttft_stream_ms=1, time_to_request_ms=1)
        obj.update(
            {
                "num_turns": turns,
                "result": text,
                "stop_reason": "stop_sequence" if not api else "end_turn",
                "session_id": self.session_id,
                **self._usage(turns if api else 0),
                "permission_denials": self.denials,
                "terminal_reason": "completed",
                "fast_mode_state": "off",
                "uuid": str(uuid.uuid4()),
            }
        )
        self._final(obj, text, 1 if is_error else 0)

    def max_turns_result(self) -> NoReturn:
        turns = self.turns + 1
        obj: dict[str, object] = {
            "type": "result",
            "subtype": "error_max_turns",
            "duration_ms": self._ms(),
            "duration_api_ms": 0,
            "is_error": True,
            "num_turns": turns,
            "stop_reason": "tool_use",
            "session_id": self.session_id,
            **self._usage(turns),
            "permission_denials": self.denials,
            "terminal_reason": "max_turns",
            "fast_mode_state": "off",
            "uuid": str(uuid.uuid4()),
            "errors": [f"Reached maximum number of turns ({self.max_turns or self.turns})"],
        }
        self._final(obj, f"Error: Reached max turns ({self.max_turns or self.turns})", 1)

    def _final(self, obj: dict[str, object], text: str, code: int) -> NoReturn:
        if self.fmt == "stream-json":
            self.emit(obj)
        elif self.fmt == "json":
            _write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))
        else:
            _write(text)
        raise Stop(code)

    def _usage(self, turns: int) -> dict[str, object]:
        cost = round(turns * _COST, 6)
        model_usage = (
            {
                f"{self.model}[1m]": {
                    "inputTokens": turns * _IN,
                    "outputTokens": turns * _OUT,
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
        usage = dict(_USAGE0, input_tokens=turns * _IN, output_tokens=turns * _OUT)
        return {"total_cost_usd": cost, "usage": usage, "modelUsage": model_usage}

    def _ms(self) -> int:
        return int((time.monotonic() - self.start) * 1000)

    # -- the canned failures ----------------------------------------------------------
    def api_failure(self, text: str, code: str, status: int | None) -> NoReturn:
        self._assistant({"type": "text", "text": text}, error=code)
        self.result(text, is_error=True, status=status, api=False)

    def overloaded(self) -> NoReturn:
        retries = _int_env("CLAUDE_CODE_MAX_RETRIES", 2, cap=10)
        for attempt in range(1, retries + 1):
            self.emit(
                {
                    "type": "system",
                    "subtype": "api_retry",
                    "attempt": attempt,
                    "max_retries": retries,
                    "retry_delay_ms": 500.0 * 2 ** (attempt - 1),
                    "error_status": 529,
                    "error": "overloaded",
                    "session_id": self.session_id,
                    "uuid": str(uuid.uuid4()),
                }
            )
        self.api_failure(_OVERLOADED_TEXT, "server_error", 529)

    # -- tools ----------------------------------------------------------------------
    def write(self, rel: str, content: str, *, append: bool = False) -> None:
        path = self.cwd / rel
        if append and path.exists():
            content = path.read_text(encoding="utf-8", errors="replace") + content
        denied = None
        if self.mode in ("default", "plan", "dontAsk"):
            denied = (
                f"Claude requested permissions to write to {path}, but you haven't granted it yet."
            )

        def run() -> tuple[str, bool, object]:
            existed = path.exists()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
            if existed:
                return (
                    f"The file {path} has been updated successfully.",
                    False,
                    {"type": "update", "filePath": str(path), "content": content},
                )
            msg = (
                f"File created successfully at: {path} (file state is current in your "
                "context — no need to Read it back)"
            )
            return (
                msg,
                False,
                {
                    "type": "create",
                    "filePath": str(path),
                    "content": content,
                    "structuredPatch": [],
                    "originalFile": None,
                    "userModified": False,
                },
            )

        self.tool("Write", {"file_path": str(path), "content": content}, run, denied_text=denied)

    def bash(self, command: str, argvs: list[list[str]], description: str) -> bool:
        denied = None
        if self.mode != "bypassPermissions":
            denied = "Claude requested permissions to use Bash, but you haven't granted it yet."

        def run() -> tuple[str, bool, object]:
            out, err, code = "", "", 0
            for argv in argvs:
                proc = subprocess.run(argv, cwd=self.cwd, capture_output=True, text=True)
                out, err, code = out + proc.stdout, err + proc.stderr, proc.returncode
                if code:
                    break
            text = (out + err).rstrip("\n")
            detail = {
                "stdout": out.rstrip("\n"),
                "stderr": err.rstrip("\n"),
                "interrupted": False,
                "isImage": False,
                "noOutputExpected": False,
            }
            return (f"Exit code {code}\n{text}" if code else text), bool(code), detail

        return self.tool(
            "Bash", {"command": command, "description": description}, run, denied_text=denied
        )

    def require(self, rel: str) -> None:
        path = self.cwd / rel

        def run() -> tuple[str, bool, object]:
            if path.is_file():
                body = path.read_text(encoding="utf-8", errors="replace")
                return body, False, {"type": "text", "file": {"filePath": str(path)}}
            msg = f"File does not exist. Note: your current working directory is {self.cwd}."
            return msg, True, f"Error: {msg}"

        if not self.tool("Read", {"file_path": str(path)}, run):
            self.result(f"required file missing: {rel}", is_error=True)


def _write(line: str) -> None:
    sys.stdout.buffer.write(line.encode("utf-8") + b"\n")
    sys.stdout.buffer.flush()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _agents() -> list[str]:
    return [a.strip() for a in os.environ.get("CPO_FAKE_AGENTS", DEFAULT_AGENTS).split(",") if a]


def _int_env(name: str, default: int, *, cap: int) -> int:
    value = os.environ.get(name, "")
    return min(int(value), cap) if value.isdigit() else default


def _bump_counter(cwd: Path) -> int:
    """How many times this task (worktree + CPO_TASK_ID) reached `overloaded-first`."""
    state = Path(os.environ.get("CPO_FAKE_STATE") or Path(tempfile.gettempdir()) / "cpo-fake-state")
    state.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(f"{cwd}|{os.environ.get('CPO_TASK_ID', '')}".encode()).hexdigest()[:16]
    counter = state / f"overloaded-{key}"
    count = int(counter.read_text() or 0) + 1 if counter.exists() else 1
    counter.write_text(str(count))
    return count


def _sleep_forever() -> NoReturn:
    while True:
        time.sleep(3600)


def run_script(s: Session, prompt: str) -> NoReturn:
    directives = _DIRECTIVE.findall(prompt)
    if not directives:
        s.write(MARKER, "done\n")
        s.text("Done.")
        s.result("Done.")
    last_was_text = False
    for verb, rest in directives:
        last_was_text = False
        args = rest.split()
        if verb in ("write", "append") and args:
            s.write(
                args[0], rest[len(args[0]) :].strip().replace("\\n", "\n"), append=verb == "append"
            )
        elif verb == "require" and args:
            s.require(args[0])
        elif verb == "commit":
            msg = rest or "scripted change"
            s.bash(
                f"git add -A && git commit -m {json.dumps(msg)}",
                [["git", "add", "-A"], ["git", "commit", "-m", msg]],
                "Commit the work",
            )
        elif verb == "marker":
            s.write(
                MARKER,
                rest or json.dumps({"task_completed": True, "summary": "scripted agent finished"}),
            )
        elif verb == "sleep" and args:
            time.sleep(float(args[0]))
        elif verb == "hang":
            _sleep_forever()
        elif verb == "ignore-term":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        elif verb == "spawn-child" and args:
            child = subprocess.Popen(["sleep", args[0]], cwd=s.cwd)  # same group, inherits pipes
            (s.cwd / ".child-pid").write_text(str(child.pid))
        elif verb == "crash":
            sys.stderr.write(
                "file:///usr/lib/node_modules/@anthropic-ai/claude-code/cli.js:4521\n"
                "TypeError: Cannot read properties of undefined (reading 'content')\n"
                "    at runTurn (file:///usr/lib/node_modules/@anthropic-ai/claude-code/cli.js:4521:17)\n"
                "\nNode.js v22.12.0\n"
            )
            raise Stop(1)
        elif verb == "error":
            s.result(rest or "scripted error", is_error=True)
        elif verb == "auth":
            s.api_failure("Not logged in · Please run /login", "authentication_failed", None)
        elif verb == "overloaded":
            s.overloaded()
        elif verb == "overloaded-first" and args:
            if _bump_counter(s.cwd) <= int(args[0]):
                s.overloaded()
        elif verb == "usage-limit" and args:
            s.api_failure(f"Claude AI usage limit reached|{args[0]}", "rate_limit", None)
        elif verb == "max-turns":
            s.max_turns_result()
        elif verb == "exit" and args:
            raise Stop(int(args[0]))
        elif verb == "print" and args:
            left = int(args[0])
            while left > 0:
                chunk = min(left, 16384)
                s.text(("lorem ipsum " * (chunk // 12 + 1))[:chunk])
                left -= chunk
        elif verb == "text":
            s.text(rest)
            last_was_text = True
        else:
            sys.stderr.write(f"scripted claude: ignoring unknown directive @script {verb} {rest}\n")
    if not last_was_text:
        s.text("All done.")
    s.result(s.last_text or "")


def main(argv: list[str] | None = None) -> int:
    try:
        opts, positional = parse_args(sys.argv[1:] if argv is None else argv)
        if opts.get("--version") or opts.get("-v"):
            _write(f"{VERSION} (Claude Code)")
            return 0
        if not (opts.get("-p") or opts.get("--print")):
            _fail("scripted claude: only print mode is scripted; pass -p/--print")
        if opts.get("--output-format") == "stream-json" and not opts.get("--verbose"):
            _fail("Error: When using --print, --output-format=stream-json requires --verbose")
        bypass = opts.get("--permission-mode") == "bypassPermissions" or opts.get(
            "--dangerously-skip-permissions"
        )
        if bypass and os.geteuid() == 0 and os.environ.get("IS_SANDBOX") != "1":
            _fail(
                "--dangerously-skip-permissions cannot be used with root/sudo privileges "
                "for security reasons"
            )
        agent = opts.get("--agent")
        if isinstance(agent, str) and "CPO_FAKE_AGENTS" in os.environ and agent not in _agents():
            _fail(f"--agent '{agent}' not found. Available agents: {', '.join(_agents())}")
        parts = [] if sys.stdin is None or sys.stdin.isatty() else [sys.stdin.read()]
        prompt = "\n".join(parts + positional)
        if not prompt.strip():
            _fail(
                "Error: Input must be provided either through stdin or as a prompt argument "
                "when using --print"
            )
        session = Session(opts, Path.cwd())
        session.init()
        run_script(session, prompt)
    except Stop as stop:
        return stop.code
    except BrokenPipeError:
        # Our reader went away; like the real CLI, leave quietly.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 1


def install_shim(bin_dir: Path) -> Path:
    """Write an executable `claude` in bin_dir that runs this module."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "claude"
    # -P (3.11+): keep the agent's cwd off sys.path, so a worktree that holds its own
    # `cpo` package (cpo working on itself) cannot shadow this one.
    safe = " -P" if sys.version_info >= (3, 11) else ""
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}"{safe} -m cpo.scripted_agent "$@"\n')
    shim.chmod(0o755)
    return shim


if __name__ == "__main__":
    sys.exit(main())
