"""`cpo parallel` end to end: a real `cpo` process, the fake codex and gemini CLIs, real git."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.conftest import FakeAgent, git
from tests.runkit import cpo, repo_state


def tmp_env(repo: Path) -> dict[str, str]:
    return {"TMPDIR": str(repo.parent)}


def write_tasks(where: Path, doc: Any, name: str = "tasks.json") -> Path:
    path = where / name
    path.write_text(json.dumps(doc))
    return path


def cpo_stdin(*args: str, cwd: Path, stdin: str) -> Any:
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "cpo", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_file_input_text_output(
    git_repo: Path, fake_codex: FakeAgent, fake_gemini: FakeAgent
) -> None:
    path = write_tasks(
        git_repo,
        {
            "tasks": [
                {"backend": "codex", "prompt": "perf review\n@say codex says fast", "id": "perf"},
                {"backend": "gemini", "prompt": "security\n@say gemini says safe", "name": "sec"},
            ]
        },
    )
    done = cpo("parallel", "-f", str(path), cwd=git_repo)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # numbered like the JSON `index` (from 0), called by `name` when the task has one
    assert any(line.startswith("[0] perf (codex) ok in ") for line in lines)
    assert any(line.startswith("[1] sec (gemini) ok in ") for line in lines)
    header = next(i for i, line in enumerate(lines) if line.startswith("#  TASK"))
    assert lines[header + 1].split()[:3] == ["0", "perf", "codex"]
    assert lines[header + 2].split()[:3] == ["1", "sec", "gemini"]
    assert "codex says fast" in lines[header + 1] and "gemini says safe" in lines[header + 2]
    assert lines[-1].startswith("total: 2 tasks, 2 completed, 0 failed, ")
    assert {c["agent"] for c in fake_codex.calls() + fake_gemini.calls()} == {"codex", "gemini"}
    # tasks run in the current directory by default
    assert all(Path(c["cwd"]) == git_repo for c in fake_codex.calls())


def test_stdin_and_json_shape(
    tmp_path: Path, fake_codex: FakeAgent, fake_gemini: FakeAgent
) -> None:
    doc = {
        "tasks": [
            {
                "backend": "codex",
                "prompt": "@say one",
                "id": "a",
                "name": "first",
                "tags": ["perf"],
                "meta": {"owner": "me"},
            },
            {"backend": "gemini", "prompt": "@auth"},
        ]
    }
    work = tmp_path / "work"
    work.mkdir()
    done = cpo_stdin("parallel", "--json", cwd=work, stdin=json.dumps(doc))
    assert done.returncode == 1
    data = json.loads(done.stdout)
    assert set(data) == {
        "total_tasks",
        "completed",
        "failed",
        "total_duration_seconds",
        "total_duration_ms",
        "results",
    }
    assert (data["total_tasks"], data["completed"], data["failed"]) == (2, 1, 1)
    first, second = data["results"]
    assert {
        "index",
        "task_id",
        "task_name",
        "backend",
        "output",
        "content",
        "duration_seconds",
        "duration_ms",
        "exit_code",
        "error",
        "tags",
        "meta",
    } <= set(first)
    assert (first["index"], first["task_id"], first["task_name"], first["backend"]) == (
        0,
        "a",
        "first",
        "codex",
    )
    assert first["output"] == first["content"] == "one"
    assert (first["exit_code"], first["error"]) == (0, None)
    assert (first["tags"], first["meta"]) == (["perf"], {"owner": "me"})
    assert second["backend"] == "gemini" and second["exit_code"] == 41
    assert second["error"].startswith("auth: ")


def test_text_and_json_number_tasks_alike(git_repo: Path, fake_codex: FakeAgent) -> None:
    # Regression: the JSON `index` counted from 0 (clinvk's meaning) and the text from 1.
    doc = {"tasks": [{"backend": "codex", "prompt": f"@say {n}", "name": n} for n in "ab"]}
    path = write_tasks(git_repo, doc)
    text = cpo("parallel", "-f", str(path), "--max-parallel", "1", cwd=git_repo).stdout
    data = json.loads(cpo("parallel", "-f", str(path), "--json", cwd=git_repo).stdout)
    for r in data["results"]:
        assert f"[{r['index']}] {r['task_name']} (codex) ok in " in text


def test_terminal_stdin_says_it_is_waiting(git_repo: Path, fake_codex: FakeAgent) -> None:
    # Regression: on a terminal, `cpo parallel` without -f waited silently for stdin.
    import pty
    import select
    import subprocess
    import sys

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cpo", "parallel", "--json"],
        cwd=git_repo,
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(slave)
    try:
        assert proc.stderr is not None
        # never block on a silent process: that silence is the bug
        assert select.select([proc.stderr], [], [], 30)[0], "nothing said on stderr"
        first = proc.stderr.readline()
        assert first.startswith("cpo parallel: reading the task file (JSON) from stdin")
        assert "Ctrl-D" in first and "-f FILE" in first
        os.write(
            master, json.dumps({"tasks": [{"backend": "codex", "prompt": "@say hi"}]}).encode()
        )
        os.write(master, b"\n\x04")  # Ctrl-D at the start of a line: end of input
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert json.loads(out)["completed"] == 1


def test_output_dir_files(git_repo: Path, fake_codex: FakeAgent) -> None:
    doc = {
        "tasks": [
            {"backend": "codex", "prompt": "@say A", "id": "alpha"},
            {"backend": "codex", "prompt": "@say B"},
        ],
        "output_dir": "results",
    }
    done = cpo("parallel", "-f", str(write_tasks(git_repo, doc)), "--quiet", cwd=git_repo)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("total: 2 tasks, 2 completed")
    assert len(done.stdout.strip().splitlines()) == 1  # --quiet: only the total line
    out = git_repo / "results"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["completed"] == 2
    one = json.loads((out / "01-alpha.json").read_text())
    assert one["task"] == doc["tasks"][0]
    assert one["result"]["output"] == "A"
    two = json.loads((out / "02-task-2.json").read_text())
    assert two["result"]["content"] == "B"


def test_fail_fast_stops_running_and_pending_tasks(git_repo: Path, fake_codex: FakeAgent) -> None:
    doc = {
        "tasks": [
            {"backend": "codex", "prompt": "@hang", "id": "slow"},
            {"backend": "codex", "prompt": "@sleep 0.3\n@error boom", "id": "bad"},
            {"backend": "codex", "prompt": "@say never", "id": "later"},
        ],
        "max_parallel": 2,
        "fail_fast": True,
    }
    done = cpo("parallel", "-f", str(write_tasks(git_repo, doc)), "--json", cwd=git_repo)
    assert done.returncode == 1
    results = {r["task_id"]: r for r in json.loads(done.stdout)["results"]}
    assert results["bad"]["error"] == "agent_error: boom"
    assert results["slow"]["error"] == "stopped: fail_fast after bad failed"
    assert results["later"]["error"] == "not run: fail_fast after bad failed"
    assert [c["stdin"] for c in fake_codex.calls() if "never" in c["stdin"]] == []


def test_no_fail_fast_flag_overrides_the_file(git_repo: Path, fake_codex: FakeAgent) -> None:
    doc = {
        "tasks": [
            {"backend": "codex", "prompt": "@error boom", "id": "bad"},
            {"backend": "codex", "prompt": "@sleep 0.5\n@say fine", "id": "good"},
        ],
        "fail_fast": True,
    }
    done = cpo(
        "parallel", "-f", str(write_tasks(git_repo, doc)), "--json", "--no-fail-fast", cwd=git_repo
    )
    results = {r["task_id"]: r for r in json.loads(done.stdout)["results"]}
    assert results["good"]["error"] is None and results["good"]["output"] == "fine"
    assert done.returncode == 1


def test_worktree_task_leaves_the_checkout_untouched(
    git_repo: Path, fake_gemini: FakeAgent
) -> None:
    before = repo_state(git_repo)
    doc = {
        "tasks": [
            {"backend": "gemini", "prompt": "@write new.py x = 1\n@say wrote", "worktree": True},
            {"backend": "gemini", "prompt": "@say looked only", "worktree": True, "id": "look"},
        ]
    }
    tasks = write_tasks(git_repo.parent, doc)
    # throwaway worktrees go to the temporary directory: keep them inside the test's
    done = cpo("parallel", "-f", str(tasks), "--json", cwd=git_repo, env=tmp_env(git_repo))
    assert done.returncode == 0, done.stderr
    assert repo_state(git_repo) == before
    assert not (git_repo / "new.py").exists()
    wrote, looked = json.loads(done.stdout)["results"]
    kept = Path(wrote["worktree"])
    assert (kept / "new.py").read_text() == "x = 1\n"  # kept: it holds the agent's change
    assert looked["worktree"] is None  # nothing changed: removed
    listed = git(git_repo, "worktree", "list", "--porcelain")
    assert str(kept) in listed and listed.count("worktree ") == 2
    calls = fake_gemini.calls()
    assert all(Path(c["cwd"]) != git_repo for c in calls)
    assert all(not Path(c["cwd"]).exists() for c in calls if "looked only" in c["stdin"])


def test_worktree_line_says_where_changes_are_kept(git_repo: Path, fake_codex: FakeAgent) -> None:
    doc = {"tasks": [{"backend": "codex", "prompt": "@write a.txt hi", "worktree": True}]}
    tasks = write_tasks(git_repo.parent, doc)
    done = cpo("parallel", "-f", str(tasks), cwd=git_repo, env=tmp_env(git_repo))
    assert done.returncode == 0, done.stderr
    assert f"its changes are kept in the worktree {git_repo.parent}" in done.stdout


def test_workdir_relative_to_current_directory(git_repo: Path, fake_codex: FakeAgent) -> None:
    (git_repo / "sub").mkdir()
    doc = {"tasks": [{"backend": "codex", "prompt": "@write here.txt x", "workdir": "sub"}]}
    done = cpo("parallel", "-f", str(write_tasks(git_repo, doc)), cwd=git_repo)
    assert done.returncode == 0, done.stderr
    assert (git_repo / "sub" / "here.txt").exists()


def test_dry_run_prints_the_command_and_runs_nothing(git_repo: Path, fake_codex: FakeAgent) -> None:
    doc = {"tasks": [{"backend": "codex", "prompt": "@write a.txt x", "dry_run": True}]}
    done = cpo("parallel", "-f", str(write_tasks(git_repo, doc)), "--json", cwd=git_repo)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)["results"][0]["output"]
    assert out.startswith("dry run: codex exec --json --skip-git-repo-check")
    assert fake_codex.calls() == []
    assert not (git_repo / "a.txt").exists()


def test_bad_task_file_is_one_line_per_problem(git_repo: Path) -> None:
    doc = {"tasks": [{"backend": "codx", "prompt": "x"}, {"promt": "y"}], "max_parallel": 0}
    done = cpo("parallel", "-f", str(write_tasks(git_repo, doc)), cwd=git_repo)
    assert done.returncode == 2
    err = done.stderr
    assert "tasks.json: tasks[0].backend: unknown backend 'codx'; did you mean 'codex'?" in err
    assert "tasks.json: tasks[1].prompt: Field required" in err
    assert "tasks.json: max_parallel: Input should be greater than or equal to 1" in err
    assert "tasks[1].promt: not a task key, ignored; did you mean 'prompt'?" in err
    assert "Traceback" not in err
    done = cpo("parallel", "-f", str(git_repo / "missing.json"), cwd=git_repo)
    assert done.returncode == 2 and "cannot be read" in done.stderr
    done = cpo_stdin("parallel", cwd=git_repo, stdin="{not json")
    assert done.returncode == 2 and "<stdin>: not valid JSON" in done.stderr


def test_unsupported_options_and_ignored_fields_are_said_once(
    git_repo: Path, fake_codex: FakeAgent
) -> None:
    task = {"backend": "codex", "prompt": "@say hi", "max_turns": 4, "output_format": "json"}
    done = cpo("parallel", "-f", str(write_tasks(git_repo, {"tasks": [task, task]})), cwd=git_repo)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("codex: has no turn limit; max_turns 4 is not enforced") == 1
    assert done.stderr.count("output_format is accepted and ignored") == 1


def test_unsupported_option_notes_name_the_backend_once(
    git_repo: Path, fake_codex: FakeAgent, fake_claude: Path
) -> None:
    # Regression: "codex: codex: has no turn limit", "claude: claude: has no sandbox option".
    doc = {
        "tasks": [
            {"backend": "codex", "prompt": "@say hi", "max_turns": 4},
            {"backend": "claude", "prompt": "@script marker", "sandbox_mode": "read-only"},
        ]
    }
    done = cpo("parallel", "-f", str(write_tasks(git_repo, doc)), cwd=git_repo)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        "warning: codex: has no turn limit; max_turns 4 is not enforced",
        "warning: claude: has no sandbox option; sandbox_mode read-only is not enforced "
        "(use permission_mode plan for a read-only run)",
    ]


def test_preflight_stops_before_any_task(git_repo: Path, fake_codex: FakeAgent) -> None:
    doc = {
        "tasks": [
            {"backend": "codex", "prompt": "@say hi"},
            {"backend": "gemini", "prompt": "@say hi"},
        ]
    }
    env = {"CPO_GEMINI_BIN": "no-such-gemini"}
    done = cpo("parallel", "-f", str(write_tasks(git_repo, doc)), cwd=git_repo, env=env)
    assert done.returncode == 2
    assert "CPO_GEMINI_BIN=no-such-gemini is not found on PATH" in done.stderr
    assert fake_codex.calls() == []


def test_backends_take_defaults_from_config(git_repo: Path, fake_codex: FakeAgent) -> None:
    (git_repo / ".cpo").mkdir()
    (git_repo / ".cpo" / "config.yaml").write_text(
        "default_backend: codex\nbackends:\n  codex:\n    model: from-config\n"
        "    sandbox_mode: read-only\n"
    )
    doc = {"tasks": [{"prompt": "@say hi"}, {"prompt": "@say hi", "model": "from-task"}]}
    done = cpo(
        "parallel", "-f", str(write_tasks(git_repo, doc)), "--max-parallel", "1", cwd=git_repo
    )
    assert done.returncode == 0, done.stderr
    models = sorted(c["argv"][c["argv"].index("-m") + 1] for c in fake_codex.calls())
    assert models == ["from-config", "from-task"]
    assert all("read-only" in c["argv"] for c in fake_codex.calls())


def test_verbose_task_streams_agent_lines(git_repo: Path, fake_codex: FakeAgent) -> None:
    doc = {"tasks": [{"backend": "codex", "prompt": "@say loud", "verbose": True, "id": "v"}]}
    done = cpo("parallel", "-f", str(write_tasks(git_repo, doc)), cwd=git_repo)
    assert "[v] session " in done.stderr and "[v] loud" in done.stderr


def test_config_show(git_repo: Path) -> None:
    (git_repo / ".cpo").mkdir()
    repo_file = git_repo / ".cpo" / "config.yaml"
    repo_file.write_text("parallel:\n  max_workers: 6\nbackends:\n  gemini:\n    model: g\n")
    done = cpo("config", "show", cwd=git_repo)
    assert done.returncode == 0, done.stderr
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("parallel.max_workers "))
    assert line.split() == ["parallel.max_workers", "=", "6", "(repo", "config", f"{repo_file})"]
    assert "(default)" in done.stdout
    done = cpo("config", "show", "--json", cwd=git_repo)
    data = json.loads(done.stdout)
    assert data["settings"]["parallel.max_workers"] == {
        "value": 6,
        "source": f"repo config {repo_file}",
    }
    assert data["settings"]["backends.gemini.model"]["value"] == "g"
    assert data["settings"]["parallel.fail_fast"]["source"] == "default"
    assert data["files"] == [str(repo_file)]


def test_config_show_reports_bad_files(git_repo: Path) -> None:
    user = Path(os.environ["XDG_CONFIG_HOME"]) / "cpo" / "config.yaml"
    user.parent.mkdir(parents=True)
    user.write_text("parallel:\n  max_workers: lots\n")
    done = cpo("config", "show", cwd=git_repo)
    assert done.returncode == 2
    assert f"{user}: parallel.max_workers: Input should be a valid integer" in done.stderr


def test_interrupt_stops_every_agent(git_repo: Path, fake_codex: FakeAgent) -> None:
    import signal
    import subprocess
    import sys
    import time

    doc = {"tasks": [{"backend": "codex", "prompt": "@hang", "id": f"h{i}"} for i in range(2)]}
    tasks = write_tasks(git_repo, doc)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cpo", "parallel", "-f", str(tasks)],
        cwd=git_repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while len(fake_codex.calls()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(fake_codex.calls()) == 2
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    for call in fake_codex.calls():  # no agent outlives cpo
        try:
            os.kill(call["pid"], 0)
        except ProcessLookupError:
            continue
        raise AssertionError(f"agent process {call['pid']} is still alive")
