"""What the fake agent CLIs share: the `@` directives in a prompt, and doing them.

A prompt line that starts with `@` is a directive, done in order (the scripted claude's
`@script <directive>` spelling works too, with `text`, `usage-limit`, `max-turns`,
`require PATH` and `append`):

    @write <path> <text>     create/overwrite a file (\\n in text is a newline)
    @commit <message>        git add -A && git commit
    @marker [json]           write .claude-task-complete ({"task_completed": true} by default)
    @say <text>              the agent's final message
    @error <text>            the model API fails with this message
    @auth                    authentication fails (before anything else happens)
    @ratelimit               the API answers 429
    @usagelimit              the account's usage limit is reached
                             (codex: `@usagelimit stderr` says it on stderr only)
    @maxturns                the session turn limit is reached
    @crash                   the CLI dies without a final event
    @exit <n>                exit with code n at the end
    @stderr <text>           a line written to stderr as the CLI exits, after anything
                             else (e.g. after its error line, as a trace or "exiting" is)
    @sleep <seconds>         wait
    @hang                    wait forever

Each invocation is also recorded (argv, cwd, stdin, a few env vars) as one JSON line in
the file named by $FAKE_AGENT_LOG, so tests can check the exact command line.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

MARKER = ".claude-task-complete"
RECORDED_ENV = ("GEMINI_CLI_TRUST_WORKSPACE", "CPO_TASK_ID", "CPO_WORKTREE", "CLAUDECODE")


@dataclass(frozen=True)
class Step:
    kind: str
    arg: str


# The scripted claude's spelling (`@script text ...`, `usage-limit`), so one prompt drives
# every fake agent in the run engine's end-to-end tests.
ALIASES = {
    "text": "say",
    "usage-limit": "usagelimit",
    "max-turns": "maxturns",
    "rate-limit": "ratelimit",
    "overloaded": "ratelimit",
}


def parse_steps(prompt: str) -> list[Step]:
    steps = []
    for line in prompt.splitlines():
        line = line.strip()
        if line.startswith("@") and len(line) > 1:
            kind, _, arg = line[1:].partition(" ")
            if kind == "script":
                kind, _, arg = arg.strip().partition(" ")
            kind = ALIASES.get(kind.lower(), kind.lower())
            if kind == "append":
                kind, arg = "write", arg  # close enough for the fakes: (re)write the file
            if kind == "require":
                path = arg.strip()
                if not (Path(os.getcwd()) / path).exists():
                    steps.append(Step("error", f"required file missing: {path}"))
                continue
            if kind == "stderr":
                # At exit, whatever path ends the fake (an error's sys.exit included).
                atexit.register(sys.stderr.write, arg.strip() + "\n")
                continue
            steps.append(Step(kind, arg.strip()))
    return steps


def has(steps: list[Step], kind: str) -> bool:
    return any(s.kind == kind for s in steps)


def record(agent: str, argv: list[str], stdin: str) -> None:
    log = os.environ.get("FAKE_AGENT_LOG")
    if not log:
        return
    entry = {
        "agent": agent,
        "pid": os.getpid(),
        "argv": argv,
        "cwd": os.getcwd(),
        "stdin": stdin,
        "env": {k: os.environ[k] for k in RECORDED_ENV if k in os.environ},
    }
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")


def write_file(rel: str, text: str) -> Path:
    path = Path(os.getcwd()) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.replace("\\n", "\n"), encoding="utf-8")
    return path


def split_write(arg: str) -> tuple[str, str]:
    path, _, text = arg.partition(" ")
    return path, (text or "content") + ("" if text.endswith("\\n") else "\n")


def marker_text(arg: str) -> str:
    return arg or json.dumps({"task_completed": True, "summary": "done by fake agent"})


def git_commit(message: str) -> tuple[int, str]:
    add = subprocess.run(["git", "add", "-A"], capture_output=True, text=True)
    if add.returncode != 0:
        return add.returncode, add.stdout + add.stderr
    done = subprocess.run(
        ["git", "commit", "-q", "-m", message or "fake agent commit"],
        capture_output=True,
        text=True,
    )
    return done.returncode, done.stdout + done.stderr


def pause(arg: str) -> None:
    time.sleep(float(arg or "1"))


def hang() -> None:
    while True:
        time.sleep(60)


def emit(event: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def read_stdin() -> str:
    if sys.stdin is None or sys.stdin.isatty():
        return ""
    return sys.stdin.read()


def exit_code(steps: list[Step], default: int = 0) -> int:
    for step in steps:
        if step.kind == "exit":
            return int(step.arg or "1")
    return default
