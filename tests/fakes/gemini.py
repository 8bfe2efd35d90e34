# ruff: noqa: E501  (help texts and messages imitate the real CLIs line for line)
"""A fake `gemini` CLI: headless mode with the real flags and `stream-json` events.

Parses its arguments like the real (strict) yargs parser: an unknown option is
"Unknown argument(s)" with exit 1, a bad choice is "Invalid values" with exit 1, and
`--yolo` with `--approval-mode` is refused. Input is stdin followed by the `-p` text,
as in the real CLI. Folder trust is on, as for a user who enabled it: a folder is
refused (exit 55) unless GEMINI_CLI_TRUST_WORKSPACE=true or --skip-trust; with
--sandbox the environment does not reach the sandboxed re-exec, so only --skip-trust
helps. Headless approval is imitated: in `default` mode write and shell tools are not
available, in `auto_edit` shell commands are refused, in `plan` nothing is written.

FAKE_GEMINI_OLD=1 imitates an old version: no stream-json, no plan mode, no --skip-trust.
The prompt follows the `@` directives of `_agent.py`.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _agent as agent

OLD = os.environ.get("FAKE_GEMINI_OLD") == "1"
BOOLEANS = {
    "-d": "debug",
    "--debug": "debug",
    "-s": "sandbox",
    "--sandbox": "sandbox",
    "-y": "yolo",
    "--yolo": "yolo",
    "--screen-reader": "screen-reader",
    "-l": "list-extensions",
    "--list-extensions": "list-extensions",
    "-h": "help",
    "--help": "help",
    "-v": "version",
    "--version": "version",
}
if not OLD:
    BOOLEANS["--skip-trust"] = "skip-trust"
STRINGS = {
    "-m": "model",
    "--model": "model",
    "-p": "prompt",
    "--prompt": "prompt",
    "-i": "prompt-interactive",
    "--prompt-interactive": "prompt-interactive",
    "--approval-mode": "approval-mode",
    "-o": "output-format",
    "--output-format": "output-format",
    "-e": "extensions",
    "--extensions": "extensions",
    "--include-directories": "include-directories",
    "--allowed-tools": "allowed-tools",
    "-r": "resume",
    "--resume": "resume",
}
CHOICES = {
    "approval-mode": ["default", "auto_edit", "yolo"] + ([] if OLD else ["plan"]),
    "output-format": ["text", "json"] + ([] if OLD else ["stream-json"]),
}
MODEL = "gemini-2.5-pro"

HELP = f"""Usage: gemini [options] [command]

Gemini CLI - Launch an interactive CLI, use -p/--prompt for non-interactive mode

Options:
  -d, --debug                Run in debug mode?  [boolean] [default: false]
  -m, --model                Model  [string]
  -p, --prompt               Prompt. Appended to input on stdin (if any).  [string]
  -i, --prompt-interactive   Execute the provided prompt and continue in interactive mode  [string]
  -s, --sandbox              Run in sandbox?  [boolean]
  -y, --yolo                 Automatically accept all actions  [boolean] [default: false]
      --approval-mode        Set the approval mode  [string] [choices: {", ".join(f'"{c}"' for c in CHOICES["approval-mode"])}]
  -e, --extensions           A list of extensions to use  [array]
      --include-directories  Additional directories to include in the workspace  [array]
{"" if OLD else "      --skip-trust           Trust the current workspace for this session  [boolean]"}
  -o, --output-format        The format of the CLI output.  [string] [choices: {", ".join(f'"{c}"' for c in CHOICES["output-format"])}]
  -v, --version              Show version number  [boolean]
  -h, --help                 Show help  [boolean]
"""


def fail_usage(message: str) -> None:
    sys.stderr.write(f"{message}\n{HELP}")
    sys.exit(1)


def unknown_argument(name: str) -> str:
    """yargs names a dashed option twice, as given and camelCased."""
    bare = name.lstrip("-")
    head, *rest = bare.split("-")
    names = [bare] + ([head + "".join(w.title() for w in rest)] if rest else [])
    return f"Unknown argument{'s' if len(names) > 1 else ''}: {', '.join(names)}"


def parse(argv: list[str]) -> tuple[dict[str, object], list[str]]:
    opts: dict[str, object] = {}
    positional: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
        elif name in BOOLEANS:
            if eq and inline not in ("true", "false"):
                fail_usage(f"Invalid boolean value for {name}: {inline}")
            opts[BOOLEANS[name]] = (inline != "false") if eq else True
        elif name in STRINGS:
            if eq:
                value = inline
            else:
                i += 1
                if i >= len(argv):
                    fail_usage(f"Not enough arguments following: {name.lstrip('-')}")
                value = argv[i]
            key = STRINGS[name]
            if key in CHOICES and value not in CHOICES[key]:
                choices = ", ".join(f'"{c}"' for c in CHOICES[key])
                fail_usage(
                    f'Invalid values:\n  Argument: {key}, Given: "{value}", Choices: {choices}'
                )
            opts[key] = value
        else:
            fail_usage(unknown_argument(name))
        i += 1
    if opts.get("yolo") and "approval-mode" in opts:
        fail_usage(
            "Cannot use both --yolo (-y) and --approval-mode together. "
            "Use --approval-mode=yolo instead."
        )
    if "prompt" in opts and positional:
        fail_usage("Cannot use both a positional prompt and the --prompt (-p) flag together")
    return opts, positional


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def main() -> None:
    argv = sys.argv[1:]
    opts, positional = parse(argv)
    if opts.get("help"):
        sys.stdout.write(HELP)
        return
    if opts.get("version"):
        print("0.99.0-fake")
        return
    stdin = agent.read_stdin()
    tail = str(opts.get("prompt") or " ".join(positional))
    text = f"{stdin}\n\n{tail}" if stdin else tail
    agent.record("gemini", argv, text)
    steps = agent.parse_steps(text)

    trusted_env = os.environ.get("GEMINI_CLI_TRUST_WORKSPACE") == "true"
    sandboxed = bool(opts.get("sandbox"))
    trusted = bool(opts.get("skip-trust")) or (trusted_env and not sandboxed)
    if not trusted:
        sys.stderr.write(
            f"Gemini CLI is not running in a trusted directory ({os.getcwd()}). "
            "To proceed, trust it or set GEMINI_CLI_TRUST_WORKSPACE=true.\n"
        )
        sys.exit(55)
    if not text.strip():
        sys.stderr.write(
            "No input provided via stdin. Input can be provided by piping data into gemini "
            "or using the --prompt option.\n"
        )
        sys.exit(42)
    if agent.has(steps, "auth"):
        sys.stderr.write(
            "Please set an Auth method in your ~/.gemini/settings.json or specify one of the "
            "following environment variables before running: GEMINI_API_KEY, "
            "GOOGLE_GENAI_USE_VERTEXAI, GOOGLE_GENAI_USE_GCA\n"
        )
        sys.exit(41)
    fmt = str(opts.get("output-format") or "text")
    mode = str(opts.get("approval-mode") or ("yolo" if opts.get("yolo") else "default"))
    run(steps, text, fmt, mode, str(opts.get("model") or MODEL))


def run(steps: list[agent.Step], text: str, fmt: str, mode: str, model: str) -> None:
    stream = fmt == "stream-json"
    started = time.monotonic()
    tool_calls = 0
    counter = iter(range(10_000))

    def emit(event: dict[str, object]) -> None:
        if stream:
            agent.emit({"type": event.pop("type"), "timestamp": now(), **event})

    def result(status: str, error: dict[str, str] | None = None) -> None:
        stats = {
            "total_tokens": 1500 + len(text) // 4,
            "input_tokens": 1400 + len(text) // 4,
            "output_tokens": 100,
            "cached": 300,
            "input": 1100 + len(text) // 4,
            "duration_ms": int((time.monotonic() - started) * 1000),
            "tool_calls": tool_calls,
        }
        event: dict[str, object] = {"type": "result", "status": status, "stats": stats}
        if error:
            event["error"] = error
        emit(event)

    def tool(name: str, params: dict[str, object], allowed: bool, action: object) -> bool:
        nonlocal tool_calls
        tool_calls += 1
        tool_id = f"{name}-{next(counter)}"
        emit({"type": "tool_use", "tool_name": name, "tool_id": tool_id, "parameters": params})
        if not allowed:
            msg = f'Tool "{name}" is not allowed in approval mode {mode}'
            emit(
                {
                    "type": "tool_result",
                    "tool_id": tool_id,
                    "status": "error",
                    "error": {"type": "tool_not_allowed", "message": msg},
                }
            )
            return False
        out = action() if callable(action) else ""
        emit(
            {
                "type": "tool_result",
                "tool_id": tool_id,
                "status": "success",
                "output": str(out or ""),
            }
        )
        return True

    emit({"type": "init", "session_id": str(uuid.uuid4()), "model": model})
    emit({"type": "message", "role": "user", "content": text})
    can_write = mode in ("auto_edit", "yolo")
    can_shell = mode == "yolo"
    final = "Done."
    for step in steps:
        if step.kind in ("write", "marker"):
            path, body = (
                agent.split_write(step.arg)
                if step.kind == "write"
                else (agent.MARKER, agent.marker_text(step.arg))
            )
            abs_path = str(Path.cwd() / path)
            tool(
                "write_file",
                {"file_path": abs_path, "content": body},
                can_write,
                lambda p=path, b=body: agent.write_file(p, b) and "",
            )
        elif step.kind == "commit":
            tool(
                "run_shell_command",
                {"command": f'git add -A && git commit -m "{step.arg}"'},
                can_shell,
                lambda m=step.arg: agent.git_commit(m)[1],
            )
        elif step.kind == "say":
            final = step.arg
        elif step.kind == "error":
            message = step.arg or "[API Error: got status: INTERNAL]"
            emit({"type": "error", "severity": "error", "message": message})
            result("error", {"type": "Error", "message": message})
            sys.exit(1)
        elif step.kind == "usagelimit":
            # The lines of gemini's quota notice (its useQuotaAndFallback), on stderr only;
            # the reset two hours from now, in local time as the CLI prints it.
            reset = datetime.now() + timedelta(hours=2)
            sys.stderr.write(
                "Usage limit reached for all Pro models.\n"
                f"Access resets at {reset.strftime('%I:%M %p').lstrip('0')}.\n"
            )
            sys.exit(1)
        elif step.kind == "ratelimit":
            # gemini 0.61, after its own retries; an API error exits with the HTTP status
            message = "[API Error: Resource has been exhausted (e.g. check quota).]\nPlease wait and try again later. To increase your limits, request a quota increase through AI Studio, or switch to another /auth method"
            result("error", {"type": "unknown", "message": message})
            sys.exit(429 % 256)
        elif step.kind == "maxturns":
            message = "Reached max session turns for this session. Increase the number of turns by specifying maxSessionTurns in settings.json."
            result("error", {"type": "FatalTurnLimitedError", "message": message})
            sys.exit(53)
        elif step.kind == "crash":
            sys.stderr.write(
                "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\n"
            )
            sys.exit(134)
        elif step.kind == "sleep":
            agent.pause(step.arg)
        elif step.kind == "hang":
            agent.hang()
    # the answer arrives in chunks
    half = len(final) // 2
    for chunk in (final[:half], final[half:]):
        if chunk:
            emit({"type": "message", "role": "assistant", "content": chunk, "delta": True})
    result("success")
    if not stream:
        print(final)
    sys.exit(agent.exit_code(steps))


if __name__ == "__main__":
    main()
