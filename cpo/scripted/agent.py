"""A scripted stand-in for the `claude` CLI, for tests and `cpo demo`.

Run as `python -m cpo.scripted.agent <claude flags>` (or through `install_shim`). It
obeys the flag rules of Claude Code 2.1.197 and prints stream-json shaped like the real
CLI (record shapes and texts: cpo.scripted.messages), but instead of a model it follows
directives found in the prompt, one per line: `@script <verb> [args]`. With no
directives it writes the completion marker and answers "Done.".

Directives: README, "The scripted claude", has each one's words and what it does (a
conflict resolver's own `resolve VERB ARGS`: cpo.scripted.directives).

`--resume <id>` goes on in a session of this cwd (cpo.scripted.sessions). Like the real
CLI it exits 143 on SIGTERM without a result (unless `ignore-term`), checks `--agent`
against the built-in agents, ~/.claude/agents and <cwd>/.claude/agents (plus
$CPO_FAKE_AGENTS), and denies as it does in print mode: `default`, `plan` and `dontAsk`
deny Write, every mode but `bypassPermissions` denies the `commit` Bash call.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import NoReturn

from cpo.scripted import messages as msgs
from cpo.scripted.cli import Stop, check_invocation, parse_args
from cpo.scripted.directives import directives_for
from cpo.scripted.sessions import open_session

VERSION = msgs.VERSION
MARKER = ".claude-task-complete"


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
        self.model = str(opts.get("--model") or msgs.MODEL)
        resume = opts.get("--resume") or opts.get("-r")  # same id: no --fork-session
        self.session_id = resume if isinstance(resume, str) else str(uuid.uuid4())
        self.start = time.monotonic()
        self.turns = 0
        self.tool_count = 0
        self.denials: list[dict[str, object]] = []
        self.last_text: str | None = None

    # -- output ---------------------------------------------------------------------
    def emit(self, obj: dict[str, object]) -> None:
        if self.fmt == "stream-json":
            _write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))

    def _assistant(self, content: dict[str, object]) -> None:
        self.emit(
            msgs.assistant_record(self.session_id, self.model, content, request=msgs.request_id())
        )

    def init(self, agents: list[str]) -> None:
        self.emit(msgs.init_record(self.session_id, self.cwd, self.model, self.mode, agents))

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
        self.emit(msgs.tool_result_record(self.session_id, block, detail))
        if self.max_turns is not None and self.turns >= self.max_turns:
            self.max_turns_result()
        return not is_error

    def result(
        self, text: str, *, is_error: bool = False, status: int | None = None, api: bool = True
    ) -> NoReturn:
        """The final record; `api=False` for failures before any model call (cost 0)."""
        obj = msgs.result_record(
            self.session_id, self.model, text, ms=self._ms(), turns=self.turns + 1 if api else 1,
            is_error=is_error, status=status, api=api, denials=self.denials,
        )  # fmt: skip
        self._final(obj, text, 1 if is_error else 0)

    def max_turns_result(self) -> NoReturn:
        limit = self.max_turns or self.turns
        obj = msgs.max_turns_record(
            self.session_id, self.model, limit, ms=self._ms(), turns=self.turns + 1,
            denials=self.denials,
        )  # fmt: skip
        self._final(obj, f"Error: Reached max turns ({limit})", 1)

    def _final(self, obj: dict[str, object], text: str, code: int) -> NoReturn:
        if self.fmt == "stream-json":
            self.emit(obj)
        elif self.fmt == "json":
            _write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))
        else:
            _write(text)
        raise Stop(code)

    def _ms(self) -> int:
        return int((time.monotonic() - self.start) * 1000)

    # -- the API's failures -------------------------------------------------------------
    def api_failure(
        self, text: str, code: str, status: int | None, *, requested: bool = True
    ) -> NoReturn:
        """The CLI's synthetic error turn, then its result; `requested=False` when the
        CLI failed before sending any request (no request id to report)."""
        request = msgs.request_id() if requested else None
        self.emit(msgs.synthetic_record(self.session_id, text, code, request=request))
        self.result(text, is_error=True, status=status, api=False)

    def retries(self, status: int, count: int, *, max_retries: int, pause: float | None) -> None:
        """`count` api_retry records. With `pause` each is followed by that wait (and says
        so); without, they report the CLI's own back-off (0.5 s doubling) and do not wait."""
        for attempt in range(1, count + 1):
            delay = 0.5 * 2 ** (attempt - 1) if pause is None else pause
            self.emit(
                msgs.api_retry_record(self.session_id, attempt, max_retries, delay * 1000, status)
            )
            if pause:
                time.sleep(pause)

    def exhausted(self, status: int, text: str, code: str) -> NoReturn:
        """Every retry failed the same way: the records, then the failure."""
        retries = _int_env("CLAUDE_CODE_MAX_RETRIES", 2, cap=10)
        self.retries(status, retries, max_retries=retries, pause=None)
        self.api_failure(text, code, status)

    # -- tools ----------------------------------------------------------------------
    def write(self, rel: str, content: str, *, append: bool = False) -> None:
        path = self.cwd / rel
        if append and path.exists():
            content = path.read_text(encoding="utf-8", errors="replace") + content

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

        self.tool(
            "Write",
            {"file_path": str(path), "content": content},
            run,
            denied_text=msgs.write_denied(self.mode, path),
        )

    def bash(self, parts: list[str], argvs: list[list[str]], description: str) -> bool:
        """A Bash call of the command `parts` joined by `&&`, run as `argvs`."""

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
            "Bash",
            {"command": " && ".join(parts), "description": description},
            run,
            denied_text=msgs.bash_denied(self.mode, parts),
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


def _int_env(name: str, default: int, *, cap: int) -> int:
    value = os.environ.get(name, "")
    return min(int(value), cap) if value.isdigit() else default


def _float_env(name: str, default: float) -> float:
    try:
        return max(float(os.environ.get(name, "")), 0.0)
    except ValueError:
        return default


def _bump_counter(cwd: Path) -> int:
    """How many times this task (worktree + CPO_TASK_ID) reached `overloaded-first`."""
    state = Path(os.environ.get("CPO_FAKE_STATE") or Path(tempfile.gettempdir()) / "cpo-fake-state")
    state.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(f"{cwd}|{os.environ.get('CPO_TASK_ID', '')}".encode()).hexdigest()[:16]
    counter = state / f"overloaded-{key}"
    count = int(counter.read_text() or 0) + 1 if counter.exists() else 1
    counter.write_text(str(count))
    return count


def _wait_for(gate: Path | None) -> None:
    """Until `gate` exists (a test's go-ahead), or forever."""
    while gate is None or not gate.exists():
        time.sleep(3600 if gate is None else 0.05)


def run_script(s: Session, prompt: str) -> NoReturn:
    directives = directives_for(prompt, s.cwd)
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
                ["git add -A", f"git commit -m {json.dumps(msg)}"],
                [["git", "add", "-A"], ["git", "commit", "-m", msg]],
                "Commit the work",
            )
        elif verb == "git" and args:
            s.bash([f"git {rest}"], [["git", *args]], "Run git")
        elif verb == "marker":
            s.write(
                MARKER,
                rest or json.dumps({"task_completed": True, "summary": "scripted agent finished"}),
            )
        elif verb == "sleep" and args:
            time.sleep(float(args[0]))
        elif verb == "wait-for" and args:
            _wait_for(s.cwd / args[0])
        elif verb == "hang":
            _wait_for(None)
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
            s.api_failure(msgs.NOT_LOGGED_IN, "authentication_failed", None, requested=False)
        elif verb == "auth-401":
            s.exhausted(401, msgs.INVALID_KEY, "authentication_failed")
        elif verb == "overloaded":
            s.exhausted(529, msgs.overloaded_text(), "server_error")
        elif verb == "overloaded-first" and args:
            if _bump_counter(s.cwd) <= int(args[0]):
                s.exhausted(529, msgs.overloaded_text(), "server_error")
        elif verb == "api-retry" and len(args) == 2 and args[0].isdigit() and args[1].isdigit():
            count = int(args[1])
            most = max(count, _int_env("CLAUDE_CODE_MAX_RETRIES", 10, cap=100))
            pause = _float_env("CPO_FAKE_RETRY_DELAY", 0.3)
            s.retries(int(args[0]), count, max_retries=most, pause=pause)
        elif verb == "usage-limit" and args:
            s.api_failure(f"Claude AI usage limit reached|{args[0]}", "rate_limit", None)
        elif verb == "max-turns":
            s.max_turns_result()
        elif verb == "exit" and args:  # `exit N [TEXT]`: TEXT on stderr first
            sys.stderr.write(rest[len(args[0]) :].strip() + "\n" if args[1:] else "")
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
        elif verb == "save-prompt" and args:  # for tests: the prompt as the agent got it
            (s.cwd / args[0]).write_text(prompt, encoding="utf-8")
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
        cwd = Path.cwd()
        prompt, agents = check_invocation(opts, positional, cwd)
        session = Session(opts, cwd)
        resumed = bool(opts.get("--resume") or opts.get("-r"))
        open_session(session.cwd, session.session_id, session.fmt, prompt, resumed=resumed)
        session.init(agents)
        run_script(session, prompt)
    except Stop as stop:
        return stop.code
    except BrokenPipeError:
        # Our reader went away; like the real CLI, leave quietly.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 1


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # The real CLI catches SIGTERM and leaves at once with 128+15, printing no result.
    # Every line is flushed as it is written, so nothing is lost by skipping cleanup.
    os._exit(143)


def install_shim(bin_dir: Path) -> Path:
    """Write an executable `claude` in bin_dir that runs this module."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "claude"
    # -P (3.11+): keep the agent's cwd off sys.path, so a worktree that holds its own
    # `cpo` package (cpo working on itself) cannot shadow this one.
    safe = " -P" if sys.version_info >= (3, 11) else ""
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}"{safe} -m cpo.scripted.agent "$@"\n')
    shim.chmod(0o755)
    return shim


if __name__ == "__main__":
    # Only as a program: main() called in-process must not take over the caller's SIGTERM.
    signal.signal(signal.SIGTERM, _on_sigterm)
    sys.exit(main())
