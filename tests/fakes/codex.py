# ruff: noqa: E501  (help texts and messages imitate the real CLIs line for line)
"""A fake `codex` CLI: `codex exec` with the real flags, printing `--json` events.

Parses its arguments like the real clap parser of `codex exec`: unknown options are
rejected with exit 2 (notably `-a/--ask-for-approval`, a flag of the interactive TUI
that `codex exec` does not take), `--sandbox` only takes the three real policies and
only once, and `-c approval_policy=` only the three real ones that take a plain string
(codex 0.169 refuses `untrusted` as "no longer supported"). It refuses to run outside a git
repository unless `--skip-git-repo-check`. The sandbox is imitated: in `read-only`
(codex exec's own default) writes and commits fail.

FAKE_CODEX_OLD=1 imitates an old version whose JSON flag was `--experimental-json`.
The prompt (stdin with `-` or no PROMPT) follows the `@` directives of `_agent.py`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _agent as agent

FLAGS = {
    "--experimental-json",
    "--skip-git-repo-check",
    "--ephemeral",
    "--full-auto",
    "--dangerously-bypass-approvals-and-sandbox",
    "--yolo",
    "--oss",
    "-h",
    "--help",
    "-V",
    "--version",
}
VALUED = {
    "-m": "--model",
    "--model": "--model",
    "-s": "--sandbox",
    "--sandbox": "--sandbox",
    "-c": "--config",
    "--config": "--config",
    "-C": "--cd",
    "--cd": "--cd",
    "--add-dir": "--add-dir",
    "-i": "--image",
    "--image": "--image",
    "-p": "--profile",
    "--profile": "--profile",
    "--color": "--color",
    "-o": "--output-last-message",
    "--output-last-message": "--output-last-message",
    "--output-schema": "--output-schema",
    "--local-provider": "--local-provider",
}
SANDBOXES = ("read-only", "workspace-write", "danger-full-access")
APPROVALS = ("on-failure", "on-request", "never")
# Options clap takes once: a second one is a usage error (exit 2), e.g. a --sandbox in
# extra_args on top of cpo's own.
SINGLE = {"--model", "--sandbox", "--profile", "--cd", "--color", "--output-last-message"}
OLD = os.environ.get("FAKE_CODEX_OLD") == "1"
if not OLD:
    FLAGS.add("--json")

HELP = """Run Codex non-interactively

Usage: codex exec [OPTIONS] [PROMPT]
       codex exec [OPTIONS] <COMMAND> [ARGS]

Arguments:
  [PROMPT]  Initial instructions for the agent. If not provided as an argument (or if `-` is used), instructions are read from stdin

Options:
  -c, --config <key=value>  Override a configuration value from ~/.codex/config.toml
  -i, --image <FILE>...     Optional image(s) to attach to the initial prompt
  -m, --model <MODEL>       Model the agent should use
      --oss                 Use open-source provider
  -p, --profile <PROFILE>   Configuration profile from config.toml
  -s, --sandbox <SANDBOX_MODE>
          Select the sandbox policy [possible values: read-only, workspace-write, danger-full-access]
      --dangerously-bypass-approvals-and-sandbox
          Skip all confirmation prompts and execute commands without sandboxing
  -C, --cd <DIR>            Tell the agent to use the specified directory as its working root
      --add-dir <DIR>       Additional directories that should be writable
      --skip-git-repo-check Allow running Codex outside a Git repository
      --ephemeral           Run without persisting session files to disk
      --output-schema <FILE>
      --color <COLOR>       [default: auto] [possible values: always, never, auto]
{json}  -o, --output-last-message <FILE>
  -h, --help                Print help
  -V, --version             Print version
"""


def usage_error(message: str) -> None:
    sys.stderr.write(
        f"error: {message}\n\nUsage: codex exec [OPTIONS] [PROMPT]\n\n"
        "For more information, try '--help'.\n"
    )
    sys.exit(2)


def parse(argv: list[str]) -> tuple[set[str], dict[str, list[str]], list[str]]:
    flags: set[str] = set()
    values: dict[str, list[str]] = {}
    positional: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if arg == "-" or not arg.startswith("-"):
            positional.append(arg)
        elif name in FLAGS and not eq:
            flags.add(name)
        elif name in VALUED:
            if eq:
                value = inline
            else:
                i += 1
                if i >= len(argv):
                    usage_error(f"a value is required for '{name} <VALUE>' but none was supplied")
                value = argv[i]
            if VALUED[name] in SINGLE and VALUED[name] in values:
                usage_error(f"the argument '{VALUED[name]} <VALUE>' cannot be used multiple times")
            values.setdefault(VALUED[name], []).append(value)
        else:
            usage_error(f"unexpected argument '{name}' found")
        i += 1
    if len(positional) > 1:
        usage_error(f"unexpected argument '{positional[1]}' found")
    return flags, values, positional


def config_value(raw: str) -> tuple[str, str]:
    key, _, value = raw.partition("=")
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return key.strip(), value


def in_git_repo() -> bool:
    done = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"], capture_output=True, text=True
    )
    return done.returncode == 0


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] in (["--version"], ["-V"]):
        print("codex-cli 0.99.0-fake")
        return
    if not argv or argv[0] not in ("exec", "e"):
        usage_error("this fake only implements `codex exec`")
    flags, values, positional = parse(argv[1:])
    if "-h" in flags or "--help" in flags:
        sys.stdout.write(
            HELP.replace(
                "{json}",
                "" if OLD else "      --json                Print events to stdout as JSONL\n",
            )
        )
        return
    sandbox_args = values.get("--sandbox", [])
    for s in sandbox_args:
        if s not in SANDBOXES:
            usage_error(
                f"invalid value '{s}' for '--sandbox <SANDBOX_MODE>'\n"
                f"  [possible values: {', '.join(SANDBOXES)}]"
            )
    if sandbox_args and "--dangerously-bypass-approvals-and-sandbox" in flags:
        usage_error(
            "the argument '--sandbox' cannot be used with '--dangerously-bypass-approvals-and-sandbox'"
        )
    config = dict(config_value(c) for c in values.get("--config", []))
    if config.get("approval_policy") == "untrusted":
        sys.stderr.write(
            'Error: approval_policy = "untrusted" is no longer supported; remove this setting\n'
        )
        sys.exit(1)
    if "approval_policy" in config and config["approval_policy"] not in APPROVALS:
        sys.stderr.write(
            f"Error loading config.toml: unknown variant `{config['approval_policy']}`, expected "
            "one of `untrusted`, `on-failure`, `on-request`, `granular`, `never`\n"
            "in `approval_policy`\n"
        )
        sys.exit(1)
    if "--skip-git-repo-check" not in flags and not in_git_repo():
        sys.stderr.write(
            "Not inside a trusted directory and --skip-git-repo-check was not specified.\n"
        )
        sys.exit(1)

    prompt = positional[0] if positional and positional[0] != "-" else None
    if prompt is None:
        prompt = agent.read_stdin()
    agent.record("codex", argv, prompt)
    if not prompt.strip():
        sys.stderr.write("No prompt provided via stdin.\n")
        sys.exit(1)

    jsonl = "--json" in flags or "--experimental-json" in flags
    sandbox = sandbox_args[-1] if sandbox_args else "read-only"
    if "--dangerously-bypass-approvals-and-sandbox" in flags or "--yolo" in flags:
        sandbox = "danger-full-access"
    run(agent.parse_steps(prompt), prompt, jsonl, sandbox)


def run(steps: list[agent.Step], prompt: str, jsonl: bool, sandbox: str) -> None:
    def emit(event: dict[str, object]) -> None:
        if jsonl:
            agent.emit(event)

    counter = iter(range(10_000))

    def item(kind: str, **fields: object) -> dict[str, object]:
        return {"id": f"item_{next(counter)}", "type": kind, **fields}

    def fail(message: str, code: int = 1, *, stderr_only: bool = False) -> None:
        if not stderr_only:
            emit({"type": "error", "message": message})
            emit({"type": "turn.failed", "error": {"message": message}})
        if stderr_only or not jsonl:
            sys.stderr.write(f"ERROR: {message}\n")
        sys.exit(code)

    emit({"type": "thread.started", "thread_id": str(uuid.uuid4())})
    emit({"type": "turn.started"})
    if agent.has(steps, "auth"):
        fail("unexpected status 401 Unauthorized: Missing bearer or basic authentication in header")
    writable = sandbox != "read-only"
    final = "Done."
    for step in steps:
        if step.kind in ("write", "marker"):
            path, text = (
                agent.split_write(step.arg)
                if step.kind == "write"
                else (agent.MARKER, agent.marker_text(step.arg))
            )
            existed = (Path.cwd() / path).exists()
            status = "completed"
            if writable:
                agent.write_file(path, text)
            else:
                status = "failed"
            change = {"path": str(Path.cwd() / path), "kind": "update" if existed else "add"}
            emit(
                {
                    "type": "item.completed",
                    "item": item("file_change", changes=[change], status=status),
                }
            )
        elif step.kind == "commit":
            command = f"bash -lc 'git add -A && git commit -m \"{step.arg}\"'"
            it = item(
                "command_execution",
                command=command,
                aggregated_output="",
                exit_code=None,
                status="in_progress",
            )
            emit({"type": "item.started", "item": it})
            if writable:
                code, out = agent.git_commit(step.arg)
            else:
                code, out = (
                    1,
                    "fatal: Unable to create '.git/index.lock': Operation not permitted (sandbox)",
                )
            done = dict(
                it,
                aggregated_output=out,
                exit_code=code,
                status="completed" if code == 0 else "failed",
            )
            emit({"type": "item.completed", "item": done})
        elif step.kind == "say":
            final = step.arg
        elif step.kind == "error":
            fail(step.arg or "stream error: unexpected end of stream")
        elif step.kind == "ratelimit":
            fail("exceeded retry limit, last status: 429 Too Many Requests")
        elif step.kind == "usagelimit":
            fail(  # `@usagelimit stderr`: said on stderr only, no JSON event
                "You've hit your usage limit. Upgrade to Pro (https://openai.com/chatgpt/pricing) "
                "or try again in 2 hours 5 minutes.",
                stderr_only=step.arg == "stderr",
            )
        elif step.kind == "crash":
            sys.stderr.write("thread 'main' panicked at codex-rs/exec/src/lib.rs: fake crash\n")
            sys.exit(101)
        elif step.kind == "sleep":
            agent.pause(step.arg)
        elif step.kind == "hang":
            agent.hang()
    emit({"type": "item.completed", "item": item("agent_message", text=final)})
    emit(
        {
            "type": "turn.completed",
            "usage": {
                "input_tokens": 1000 + len(prompt) // 4,
                "cached_input_tokens": 200,
                "output_tokens": 50 + 10 * len(steps),
            },
        }
    )
    if not jsonl:
        print(final)
    sys.exit(agent.exit_code(steps))


if __name__ == "__main__":
    main()
