"""The scripted `claude`: run through its shim as a real subprocess in a real git repo."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from cpo.agents.base import AgentOutcome
from cpo.agents.claude import BACKEND, ClaudeParser
from cpo.proc import ProcessRegistry, group_alive, run_streaming
from tests.conftest import git

CAPTURES = Path(__file__).parent / "data" / "claude-cli"
FLAGS = ["-p", "--output-format", "stream-json", "--verbose"]
BYPASS = [*FLAGS, "--permission-mode", "bypassPermissions"]


def claude(
    cwd: Path, prompt: str = "", *args: str, flags: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    argv = ["claude", *(BYPASS if flags is None else flags), *args]
    return subprocess.run(argv, cwd=cwd, input=prompt, capture_output=True, text=True, timeout=60)


def lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines()]


def outcome(proc: subprocess.CompletedProcess[str]) -> AgentOutcome:
    parser = ClaudeParser()
    for line in proc.stdout.splitlines():
        parser.feed(line)
    return parser.finish(proc.returncode, proc.stderr)


def script(*directives: str) -> str:
    return "Implement the task.\n" + "".join(f"@script {d}\n" for d in directives)


pytestmark = pytest.mark.usefixtures("fake_claude")


# -- flag rules ---------------------------------------------------------------------
def test_version(git_repo: Path) -> None:
    proc = claude(git_repo, "", flags=["--version"])
    assert (proc.returncode, proc.stdout) == (0, "2.1.197 (Claude Code)\n")


def test_stream_json_requires_verbose(git_repo: Path) -> None:
    proc = claude(git_repo, "hi", flags=["-p", "--output-format", "stream-json"])
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip() == (
        "Error: When using --print, --output-format=stream-json requires --verbose"
    )
    assert outcome(proc).error_class == "bad_flag"


def test_unknown_option(git_repo: Path) -> None:
    proc = claude(git_repo, "hi", "--frobnicate")
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: unknown option '--frobnicate'"
    assert outcome(proc).error_class == "bad_flag"


def test_print_mode_required_and_bad_choice(git_repo: Path) -> None:
    assert claude(git_repo, "hi", flags=["--verbose"]).returncode == 1
    proc = claude(git_repo, "hi", flags=[*FLAGS, "--permission-mode", "yolo"])
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "error: option '--permission-mode <mode>' argument 'yolo' is invalid. Allowed choices "
        "are acceptEdits, auto, bypassPermissions, default, dontAsk, plan."
    )
    assert outcome(proc).error_class == "bad_flag"
    missing = claude(git_repo, "hi", flags=[*FLAGS, "--model"])
    assert missing.stderr.strip() == "error: option '--model <model>' argument missing"


def test_empty_prompt_is_refused(git_repo: Path) -> None:
    proc = claude(git_repo, "")
    assert proc.returncode == 1 and "Input must be provided" in proc.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="the root rule only applies to root")
def test_root_needs_is_sandbox(git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IS_SANDBOX")
    for flags in (BYPASS, [*FLAGS, "--dangerously-skip-permissions"]):
        proc = claude(git_repo, "hi", flags=flags)
        assert proc.returncode == 1
        assert proc.stderr.strip() == (
            "--dangerously-skip-permissions cannot be used with root/sudo privileges "
            "for security reasons"
        )
        assert outcome(proc).error_class == "bad_flag"
    assert (
        claude(git_repo, "hi", flags=[*FLAGS, "--permission-mode", "acceptEdits"]).returncode == 0
    )
    monkeypatch.setenv("IS_SANDBOX", "1")
    assert claude(git_repo, "hi").returncode == 0


def _agent_file(folder: Path, stem: str, front: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.md").write_text(f"---\n{front}\n---\nYou are an agent.\n")


def test_agent_lookup(git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert claude(git_repo, "hi", "--agent", "general-purpose").returncode == 0
    project = git_repo / ".claude" / "agents"
    _agent_file(project, "file-stem", "name: mine\ndescription: d")
    _agent_file(project / "nested", "deep", "name: Deep\ndescription: d")
    _agent_file(project, "no-description", "name: nodesc")
    _agent_file(Path.home() / ".claude" / "agents", "u", "name: 'user one'\ndescription: d")
    (project / "broken.md").write_text("---\nname: [unclosed\n---\n")
    assert claude(git_repo, "hi", "--agent", "mine").returncode == 0
    assert claude(git_repo, "hi", "--agent", "user one").returncode == 0
    proc = claude(git_repo, "hi", "--agent", "file-stem")  # the frontmatter name counts
    assert proc.returncode == 1 and proc.stdout == ""
    listed = "claude, Deep, Explore, general-purpose, mine, Plan, statusline-setup, user one"
    assert proc.stderr.strip() == f"--agent 'file-stem' not found. Available agents: {listed}"
    out = outcome(proc)
    assert out.error_class == "agent_error" and out.error_text == proc.stderr.strip()
    ok = claude(git_repo, "hi")
    assert lines(ok.stdout)[0]["agents"] == listed.split(", ")
    # CPO_FAKE_AGENTS adds names (e.g. plugin agents) to the ones found
    monkeypatch.setenv("CPO_FAKE_AGENTS", "python-experts:django-expert, reviewer")
    assert claude(git_repo, "hi", "--agent", "python-experts:django-expert").returncode == 0
    assert (
        "python-experts:django-expert, reviewer, statusline-setup"
        in claude(git_repo, "hi", "--agent", "nope").stderr
    )


def test_backend_argv_is_accepted(git_repo: Path) -> None:
    from cpo.agents.base import AgentRequest

    req = AgentRequest(
        task_id="t", wave=1, prompt="p", worktree=git_repo, parallel_dir=git_repo,
        system_prompt="commit, then write the marker", model="opus", max_turns=9, agent="Plan",
    )  # fmt: skip
    argv = BACKEND.argv(req)
    proc = subprocess.run(argv, cwd=git_repo, input="go", capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert lines(proc.stdout)[0]["model"] == "opus"


# -- output shape ---------------------------------------------------------------------
def _keys_by_kind(records: list[dict[str, object]]) -> dict[str, set[str]]:
    # `request_id` is left out: some captures were recorded before the CLI added it to
    # assistant records (test_request_ids checks it against the real CLI's rule).
    out: dict[str, set[str]] = {}
    for rec in records:
        kind = f"{rec['type']}/{rec.get('subtype', '')}"
        out.setdefault(kind, set()).update(set(rec) - {"request_id"})
    return out


def test_default_run_matches_success_capture(git_repo: Path) -> None:
    proc = claude(git_repo, "Just do the task.", "--max-turns", "5")
    assert proc.returncode == 0, proc.stderr
    ours = lines(proc.stdout)
    real = lines((CAPTURES / "stream-json-success-write-marker.jsonl").read_text())
    assert [r["type"] for r in ours] == [r["type"] for r in real]
    assert _keys_by_kind(ours) == _keys_by_kind(real)
    assert ours[0]["cwd"] == str(git_repo) and ours[0]["permissionMode"] == "bypassPermissions"
    assert (git_repo / ".claude-task-complete").read_text() == "done\n"
    out = outcome(proc)
    assert not out.is_error and out.final_text == "Done." and out.num_turns == 2
    assert len({r["session_id"] for r in ours}) == 1 and out.session_id == ours[0]["session_id"]


def test_write_commit_marker_matches_capture(git_repo: Path) -> None:
    proc = claude(git_repo, script("write src/a.txt hello\\nworld", "commit add a", "marker"))
    assert proc.returncode == 0, proc.stderr
    ours = lines(proc.stdout)
    real = lines((CAPTURES / "stream-json-write-commit-marker.jsonl").read_text())
    assert _keys_by_kind(ours) == _keys_by_kind(real)
    assert (git_repo / "src" / "a.txt").read_text() == "hello\nworld"
    assert git(git_repo, "log", "-1", "--format=%s") == "add a"
    assert git(git_repo, "show", "--name-only", "--format=", "HEAD") == "src/a.txt"
    marker = json.loads((git_repo / ".claude-task-complete").read_text())
    assert marker["task_completed"] is True
    out = outcome(proc)
    assert (out.num_turns, out.input_tokens, out.output_tokens) == (4, 4000, 200)
    assert out.cost_usd == pytest.approx(0.025) and out.final_text == "All done."


def test_output_formats(git_repo: Path) -> None:
    text = claude(git_repo, "x", flags=["-p", "--permission-mode", "bypassPermissions"])
    assert (text.returncode, text.stdout) == (0, "Done.\n")
    js = claude(
        git_repo, "x", flags=["-p", "--output-format", "json", "--dangerously-skip-permissions"]
    )
    (result,) = lines(js.stdout)
    assert result["type"] == "result" and result["result"] == "Done."


def test_prompt_as_argument(git_repo: Path) -> None:
    proc = claude(git_repo, "", "@script text hello from argv")
    assert outcome(proc).final_text == "hello from argv"


# -- directives ---------------------------------------------------------------------
def test_append_and_text(git_repo: Path) -> None:
    proc = claude(
        git_repo, script("write notes.md one", "append notes.md \\ntwo", "text Finished.")
    )
    assert (git_repo / "notes.md").read_text() == "one\ntwo"
    out = outcome(proc)
    assert out.final_text == "Finished." and not (git_repo / ".claude-task-complete").exists()


def test_require(git_repo: Path) -> None:
    ok = claude(git_repo, script("require README.md", "marker"))
    assert ok.returncode == 0
    missing = claude(git_repo, script("require lib/dep.py", "marker {}"))
    assert missing.returncode == 1
    out = outcome(missing)
    assert out.is_error and out.error_text == "required file missing: lib/dep.py"
    assert out.error_class == "agent_error"
    # the marker is the first run's: the second stopped before its own
    assert json.loads((git_repo / ".claude-task-complete").read_text())["task_completed"] is True


def test_marker_custom_json(git_repo: Path) -> None:
    claude(git_repo, script('marker {"task_completed": false, "summary": "gave up"}'))
    assert json.loads((git_repo / ".claude-task-complete").read_text())["task_completed"] is False


def test_commit_with_nothing_to_commit_is_a_tool_error(git_repo: Path) -> None:
    proc = claude(git_repo, script("commit nothing here"))
    assert proc.returncode == 0
    results = [r for r in lines(proc.stdout) if r["type"] == "user"]
    block = results[0]["message"]["content"][0]  # type: ignore[index]
    assert block["is_error"] is True and block["content"].startswith("Exit code 1")


@pytest.mark.parametrize(
    ("directive", "klass", "text"),
    [
        ("auth", "auth", "Not logged in · Please run /login"),
        ("error the tests do not pass", "agent_error", "the tests do not pass"),
        ("usage-limit 1767225600", "usage_limit", "Claude AI usage limit reached|1767225600"),
        ("max-turns", "max_turns", None),
    ],
)
def test_failures(git_repo: Path, directive: str, klass: str, text: str | None) -> None:
    proc = claude(git_repo, script("write a.txt x", directive, "marker"))
    assert proc.returncode == 1
    out = outcome(proc)
    assert out.reported_result and out.is_error and out.error_class == klass
    if text:
        assert out.error_text == text
    assert not (git_repo / ".claude-task-complete").exists()
    if klass == "usage_limit":
        assert out.reset_at == 1767225600.0


def test_auth_matches_capture(git_repo: Path) -> None:
    ours = lines(claude(git_repo, script("auth")).stdout)
    real = lines((CAPTURES / "stream-json-not-logged-in.jsonl").read_text())
    assert _keys_by_kind(ours) == _keys_by_kind(real)
    for mine, theirs in zip(ours[1:], real[1:], strict=True):
        assert mine.get("error") == theirs.get("error")
        assert mine.get("result") == theirs.get("result")


def test_overloaded_matches_capture(git_repo: Path) -> None:
    proc = claude(git_repo, script("overloaded"))
    ours = lines(proc.stdout)
    real = lines((CAPTURES / "stream-json-overloaded-error.jsonl").read_text())
    assert [r.get("subtype") for r in ours] == [r.get("subtype") for r in real]
    assert _keys_by_kind(ours) == _keys_by_kind(real)
    out = outcome(proc)
    assert proc.returncode == 1 and out.error_class == "overloaded"
    assert ours[-1]["api_error_status"] == 529


def test_overloaded_first_then_success(git_repo: Path) -> None:
    prompt = script("overloaded-first 2", "write a.txt x", "marker")
    classes = [outcome(claude(git_repo, prompt)).error_class for _ in range(3)]
    assert classes == ["overloaded", "overloaded", None]
    assert (git_repo / "a.txt").exists()


def test_overloaded_names_the_gateway(git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    plain = outcome(claude(git_repo, script("overloaded"))).error_text
    assert plain == (
        "API Error: 529 Overloaded. This is a server-side issue, usually temporary — "
        "try again in a moment."
    )
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:8080")
    proc = claude(git_repo, script("overloaded"))
    assert lines(proc.stdout)[-1]["result"] == (
        f"{plain} If it persists, check your inference gateway (127.0.0.1:8080)."
    )


def test_api_retry_then_success(git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CPO_FAKE_RETRY_DELAY", "0.01")
    proc = claude(
        git_repo, script("api-retry 529 2", "write b.txt hi", "api-retry 429 1", "text ok")
    )
    assert proc.returncode == 0, proc.stderr
    ours = lines(proc.stdout)
    real = lines((CAPTURES / "stream-json-api-retry-then-success.jsonl").read_text())
    assert _keys_by_kind(ours) == _keys_by_kind(real)
    retries = [(r["attempt"], r["error_status"], r["error"]) for r in ours if r.get("attempt")]
    assert retries == [(1, 529, "overloaded"), (2, 529, "overloaded"), (1, 429, "rate_limit")]
    first = ours[1]
    assert (first["max_retries"], first["retry_delay_ms"]) == (10, 10.0)  # the pause it takes
    kinds = ["system", "system", "system", "assistant", "user", "system", "assistant", "result"]
    assert [r["type"] for r in ours] == kinds
    out = outcome(proc)
    assert not out.is_error and out.final_text == "ok" and (git_repo / "b.txt").exists()


def test_api_retry_reports_auth_and_server_errors(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CPO_FAKE_RETRY_DELAY", "0")
    monkeypatch.setenv("CLAUDE_CODE_MAX_RETRIES", "3")
    proc = claude(git_repo, script("api-retry 401 1", "api-retry 503 4"))
    records = [r for r in lines(proc.stdout) if r.get("subtype") == "api_retry"]
    assert [(r["error"], r["max_retries"]) for r in records] == [
        ("authentication_failed", 3)] + [("server_error", 4)] * 4  # fmt: skip
    # cpo gives up on a rejected key at its first 401 retry, and only on that one
    parser = ClaudeParser()
    fatal = [e.fatal for line in proc.stdout.splitlines() for e in parser.feed(line) if e.fatal]
    assert fatal == ["auth"]


def test_auth_401(git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAUDE_CODE_MAX_RETRIES", "1")
    proc = claude(git_repo, script("write a.txt x", "auth-401", "marker"))
    assert proc.returncode == 1
    ours = lines(proc.stdout)
    assert [r.get("subtype") for r in ours[-3:]] == ["api_retry", None, "success"]
    assert ours[-3]["error_status"] == 401 and ours[-2]["error"] == "authentication_failed"
    result = ours[-1]
    assert result["is_error"] is True and result["api_error_status"] == 401
    assert result["result"] == "Invalid API key · Fix external API key"
    assert outcome(proc).error_class == "auth"
    assert not (git_repo / ".claude-task-complete").exists()


def test_request_ids(git_repo: Path) -> None:
    # The real CLI copies the API's request-id onto each assistant record, synthetic error
    # turns included, unless no request was made (not logged in).
    ok = [r for r in lines(claude(git_repo, script("write a.txt x", "text hi")).stdout)
          if r["type"] == "assistant"]  # fmt: skip
    assert len(ok) == 2 and all(str(r["request_id"]).startswith("req_") for r in ok)
    assert ok[0]["request_id"] != ok[1]["request_id"]
    failed = lines(claude(git_repo, script("overloaded")).stdout)[-2]
    assert failed["error"] == "server_error" and "request_id" in failed
    assert "request_id" not in lines(claude(git_repo, script("auth")).stdout)[-2]


def test_max_turns_flag(git_repo: Path) -> None:
    proc = claude(git_repo, script("write a.txt 1", "write b.txt 2", "marker"), "--max-turns", "1")
    assert proc.returncode == 1
    result = lines(proc.stdout)[-1]
    assert result["subtype"] == "error_max_turns" and result["num_turns"] == 2
    assert result["errors"] == ["Reached maximum number of turns (1)"]
    assert (git_repo / "a.txt").exists() and not (git_repo / "b.txt").exists()
    assert outcome(proc).error_class == "max_turns"


def test_crash_and_exit(git_repo: Path) -> None:
    crash = claude(git_repo, script("crash"))
    assert crash.returncode == 1 and "TypeError" in crash.stderr
    assert all(r["type"] != "result" for r in lines(crash.stdout))
    assert outcome(crash).error_class == "crashed"
    early = claude(git_repo, script("write a.txt x", "exit 7", "marker"))
    assert early.returncode == 7 and (git_repo / "a.txt").exists()
    assert not (git_repo / ".claude-task-complete").exists()


def test_print_large_output(git_repo: Path) -> None:
    proc = claude(git_repo, script("print 100000", "text ok"))
    texts = [
        r["message"]["content"][0]["text"]  # type: ignore[index]
        for r in lines(proc.stdout)
        if r["type"] == "assistant"
    ]
    assert len(texts) > 2 and sum(len(t) for t in texts[:-1]) == 100000


def _denials(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [
        r["message"]["content"][0]["content"]  # type: ignore[index]
        for r in lines(proc.stdout)
        if r["type"] == "user"
    ]


def test_permission_modes_deny_like_headless_claude(git_repo: Path) -> None:
    flags = [*FLAGS, "--permission-mode", "acceptEdits"]
    proc = claude(git_repo, script("write a.txt x", "commit add a", "marker"), flags=flags)
    assert proc.returncode == 0 and (git_repo / "a.txt").exists()
    assert git(git_repo, "log", "-1", "--format=%s") == "initial"  # Bash was refused
    assert [d["tool_name"] for d in lines(proc.stdout)[-1]["permission_denials"]] == ["Bash"]  # type: ignore[union-attr]
    assert _denials(proc)[1] == (
        "This Bash command contains multiple operations. The following parts require "
        'approval: git add -A, git commit -m "add a"'
    )
    flags = [*FLAGS, "--permission-mode", "default"]
    proc = claude(git_repo, script("write b.txt x"), flags=flags)
    assert not (git_repo / "b.txt").exists()
    assert _denials(proc) == [
        f"Claude requested permissions to write to {git_repo / 'b.txt'}, but you haven't "
        "granted it yet."
    ]


def test_plan_and_dont_ask_denials(git_repo: Path) -> None:
    plan = claude(git_repo, script("write b.txt x"), flags=[*FLAGS, "--permission-mode", "plan"])
    assert _denials(plan) == [f"Cannot write to {git_repo / 'b.txt'} while in plan mode."]
    flags = [*FLAGS, "--permission-mode", "dontAsk"]
    dont = _denials(claude(git_repo, script("write b.txt x", "commit c"), flags=flags))
    assert [d.split(" has been denied")[0] for d in dont] == [
        "Permission to use Write", "Permission to use Bash"]  # fmt: skip
    assert all(d.endswith("Let the user decide how to proceed.") for d in dont)
    assert not (git_repo / "b.txt").exists()


# -- signals and process groups, through the real process helper -----------------------
def _run(cwd: Path, prompt: str, **kw: object) -> tuple[int | None, list[str], object]:
    out: list[str] = []
    result = run_streaming(
        ["claude", *BYPASS], cwd=cwd, env=os.environ, stdin_text=prompt, on_stdout=out.append,
        **kw,  # type: ignore[arg-type]
    )  # fmt: skip
    return result.returncode, out, result


def test_sleep_then_finish(git_repo: Path) -> None:
    code, out, _ = _run(git_repo, script("sleep 0.2", "marker"))
    assert code == 0 and json.loads(out[-1])["type"] == "result"


def test_hang_is_stopped_by_sigterm(git_repo: Path) -> None:
    code, out, result = _run(git_repo, script("hang"), timeout=1.0, registry=ProcessRegistry(0.5))
    # Like the real CLI: SIGTERM is caught, the exit is 128+15 and no result is printed.
    assert result.timed_out and code == 143  # type: ignore[attr-defined]
    assert len(out) == 1  # the init line only: hang prints nothing


def test_ignore_term_needs_sigkill(git_repo: Path) -> None:
    prompt = script("ignore-term", "hang")
    code, _, result = _run(git_repo, prompt, timeout=1.0, registry=ProcessRegistry(0.3))
    assert result.timed_out and code == -9  # type: ignore[attr-defined]


def test_spawn_child_is_swept_with_the_group(git_repo: Path) -> None:
    code, _, _ = _run(git_repo, script("spawn-child 60", "marker"))
    assert code == 0
    pid = int((git_repo / ".child-pid").read_text())
    # The grandchild shares the agent's group, which run_streaming SIGKILLs at the end.
    # Delivery is asynchronous: on a loaded machine the kernel may take a moment to finish
    # it off, so wait (bounded) for it to go rather than racing the signal.
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(pid)


def test_spawn_child_outlives_a_plain_run(git_repo: Path) -> None:
    proc = subprocess.Popen(
        ["claude", *BYPASS], cwd=git_repo, stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    proc.communicate(script("spawn-child 60").encode(), timeout=30)
    pid = int((git_repo / ".child-pid").read_text())
    try:
        assert proc.returncode == 0 and _alive(pid) and group_alive(proc.pid)
    finally:
        os.killpg(proc.pid, 9)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_shim_ignores_a_cpo_package_in_cwd(git_repo: Path) -> None:
    # A worktree of cpo itself holds a `cpo/` package; the shim must still run ours.
    (git_repo / "cpo").mkdir()
    (git_repo / "cpo" / "__init__.py").write_text("raise SystemExit('wrong cpo imported')\n")
    (git_repo / "cpo" / "scripted").mkdir()
    (git_repo / "cpo" / "scripted" / "agent.py").write_text("raise SystemExit('wrong cpo')\n")
    proc = claude(git_repo, "x")
    assert proc.returncode == 0, proc.stderr
