"""Worktrees ready to work in (cpo.run.ready): `.worktreeinclude` copies and setup commands."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from plandirs import cpo_manifest, task_md, write_dir

from cpo.config import load_settings
from cpo.git import Git
from cpo.plan.load import load_plan
from cpo.run.ready import copy_included, find_readiness
from tests.conftest import git
from tests.runkit import cpo, make_spec, report


def _checkout_with_local_files(repo: Path, outside: Path) -> None:
    """Ignored and untracked files of every kind a user's checkout holds."""
    (repo / ".gitignore").write_text(".env\n.claude/settings.local.json\nbuild/\n*.link\n")
    (repo / ".worktreeinclude").write_text(
        ".env\n.claude/settings.local.json\n*.link\nnotes-included.txt\n"
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "ignore rules")
    (repo / ".env").write_text("API_URL=http://localhost\n")
    os.chmod(repo / ".env", 0o600)
    (repo / ".claude").mkdir()
    (repo / ".claude" / "settings.local.json").write_text('{"permissions": {}}\n')
    (repo / "build").mkdir()
    (repo / "build" / "out.o").write_text("binary\n")  # ignored, not included
    outside.write_text("a secret outside the repository\n")
    (repo / "out.link").symlink_to(outside)  # leads out: never copied
    (repo / "in.link").symlink_to(".env")  # stays inside: copied as a link
    (repo / "notes-included.txt").write_text("untracked, not ignored, included\n")
    (repo / "notes.txt").write_text("untracked, not included\n")


def test_worktree_gets_exactly_the_included_files(git_repo: Path, tmp_path: Path) -> None:
    _checkout_with_local_files(git_repo, tmp_path / "secret.txt")
    root = write_dir(
        git_repo / "parallel" / "TS-1",
        cpo_manifest([{"id": "task-001"}], worktree_include=["build/out.o"]),
        {"task-001.md": {"id": "task-001"}},
    )
    plan = load_plan(root)
    g = Git(git_repo)
    ready = find_readiness(g, git_repo, plan, load_settings(git_repo))
    tree = tmp_path / "wt"
    git(git_repo, "worktree", "add", "-q", str(tree), "-b", "feature/x")
    copied, skipped = copy_included(git_repo, ready.files, tree)

    local = {".env", ".claude/settings.local.json", "in.link", "notes-included.txt", "build/out.o"}
    got = {
        str(p.relative_to(tree))
        for p in tree.rglob("*")
        if (p.is_file() or p.is_symlink()) and ".git" not in p.parts
    }
    assert got - {"README.md", ".gitignore", ".worktreeinclude"} == local
    assert copied == len(local)
    assert skipped == [f"out.link: a symlink to {tmp_path / 'secret.txt'}, outside the repository"]
    assert stat.S_IMODE((tree / ".env").stat().st_mode) == 0o600
    assert (tree / "in.link").is_symlink() and os.readlink(tree / "in.link") == ".env"
    # An included file git does not ignore is kept out of the task's commits.
    assert git(tree, "status", "--porcelain") == ""


def test_no_include_file_copies_nothing(git_repo: Path, tmp_path: Path) -> None:
    (git_repo / ".env").write_text("X=1\n")
    root = write_dir(
        git_repo / "parallel" / "TS-1",
        cpo_manifest([{"id": "task-001"}]),
        {"task-001.md": {"id": "task-001"}},
    )
    plan = load_plan(root)
    assert find_readiness(Git(git_repo), git_repo, plan, load_settings(git_repo)).files == ()


@pytest.mark.usefixtures("fake_claude")
def test_run_copies_included_files_into_every_worktree(git_repo: Path, tmp_path: Path) -> None:
    _checkout_with_local_files(git_repo, tmp_path / "secret.txt")
    needs = "@script require .env\n@script require .claude/settings.local.json\n"
    root = make_spec(
        git_repo,
        [
            {f"task-00{i}": f"{needs}@script write f{i}.txt {i}\n@script commit\n@script marker"}
            for i in (1, 2)
        ],
        validation={1: "test -f .env && test -f .claude/settings.local.json"},
    )
    # make_spec committed everything: the local files must be local again.
    git(git_repo, "rm", "-q", "--cached", "notes.txt", "notes-included.txt")
    git(git_repo, "commit", "-q", "-m", "untrack")
    proc = cpo("run", str(root), "--allow-dirty", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = report(root)
    for task in data["tasks"].values():
        tree = Path(task["worktree"])
        assert (tree / ".env").read_text() == "API_URL=http://localhost\n"
        assert (tree / ".claude" / "settings.local.json").exists()
        assert not (tree / "out.link").exists() and not (tree / "out.link").is_symlink()
        assert not (tree / "build").exists()
        # the report names what each attempt got
        included = task["attempts"][-1]["included"]
        assert ".env" in included and ".claude/settings.local.json" in included
    integration = Path(data["integration_worktree"])
    assert (integration / ".env").exists()
    files = git(git_repo, "ls-tree", "-r", "--name-only", "integration/TS-0042").splitlines()
    assert ".env" not in files and "notes-included.txt" not in files


@pytest.mark.usefixtures("fake_claude")
def test_setup_runs_spec_then_task_commands_before_the_agent(git_repo: Path) -> None:
    (git_repo / ".gitignore").write_text(".ready\n")
    root = make_spec(
        git_repo,
        [
            {
                "task-001": "@script require .ready\n@script write a.txt a\n"
                "@script commit\n@script marker"
            }
        ],
        validation={1: "grep -q spec- .ready"},
        extra={"setup": "echo spec-$CPO_TASK_ID > .ready"},
    )
    task_file = root / "tasks" / "task-001.md"
    task_file.write_text(
        task_file.read_text().replace("deps: []", "deps: []\nsetup: [grep -q spec-task-001 .ready]")
    )
    git(git_repo, "commit", "-q", "-am", "task setup")
    proc = cpo("run", str(root), cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = (root / "logs" / "task-001.log").read_text()
    assert "[cpo] setup: $ echo spec-$CPO_TASK_ID > .ready" in log
    assert "[cpo] setup: $ grep -q spec-task-001 .ready" in log
    assert log.index("setup: $ grep") < log.index("=== task task-001")
    assert "$ echo spec-" in (root / "logs" / "integration-setup.log").read_text()
    data = report(root)
    assert data["waves"][0]["validation_exit_code"] == 0
    # the report records each setup command with its exit code and duration, and the ports
    attempt = data["tasks"]["task-001"]["attempts"][-1]
    steps = [(s["command"], s["exit_code"]) for s in attempt["setup"]]
    assert steps == [("echo spec-$CPO_TASK_ID > .ready", 0), ("grep -q spec-task-001 .ready", 0)]
    assert all(s["duration_s"] >= 0 for s in attempt["setup"])
    first, last = attempt["ports"]
    assert last - first + 1 == 10


@pytest.mark.usefixtures("fake_claude")
def test_failed_setup_fails_the_task_and_no_agent_starts(git_repo: Path) -> None:
    root = make_spec(
        git_repo,
        [{"task-001": "@script write a.txt a\n@script commit\n@script marker"}],
        extra={"setup": ["true", "echo broken >&2; exit 3"]},
    )
    proc = cpo("run", str(root), cwd=git_repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    task = report(root)["tasks"]["task-001"]
    assert task["status"] == "failed" and task["reason"] == "setup_failed"
    assert "echo broken >&2; exit 3" in task["error"] and "exit code 3" in task["error"]
    assert task["commits"] == 0
    assert not (root / "logs" / "task-001.jsonl").exists()  # the agent never ran
    assert "broken" in (root / "logs" / "task-001.log").read_text()


@pytest.mark.usefixtures("fake_claude")
def test_config_setup_runs_when_the_manifest_has_none(git_repo: Path) -> None:
    (git_repo / ".cpo").mkdir()
    (git_repo / ".cpo" / "config.yaml").write_text("worktree: {setup: 'exit 4'}\n")
    root = make_spec(git_repo, [{"task-001": "@script marker"}])
    proc = cpo("run", str(root), cwd=git_repo)
    assert proc.returncode == 1
    assert report(root)["tasks"]["task-001"]["reason"] == "setup_failed"


def test_validate_reports_bad_setup_keys(git_repo: Path) -> None:
    root = write_dir(
        git_repo / "parallel" / "TS-1",
        cpo_manifest(
            [{"id": "task-001"}],
            setup=5,
            worktree_include="x",
            env={"CPO_PORT": "1"},
            share=["../up"],
        ),
        {"task-001.md": task_md({"id": "task-001", "setup": [1], "env": {"A-B": "x"}})},
    )
    proc = cpo("validate", str(root), "--json", cwd=git_repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    problems = {(p["file"], p["field"]): p["message"] for p in json.loads(proc.stdout)["problems"]}
    assert problems == {
        ("manifest.json", "setup"): "must be a shell command line or a list of them, not 5",
        ("manifest.json", "worktree_include"): "Input should be a valid list (got 'x')",
        ("tasks/task-001.md", "setup"): "must be a shell command line or a list of them, not [1]",
        ("manifest.json", "env"): "CPO_PORT: CPO_ variables are set by cpo itself",
        ("manifest.json", "share"): "'../up': must be a folder inside the repository, "
        "like node_modules",
        ("tasks/task-001.md", "env"): "'A-B' is not an environment variable name",
    }
    (git_repo / ".cpo").mkdir()
    (git_repo / ".cpo" / "config.yaml").write_text("worktree: {setup: 5}\n")
    proc = cpo("config", "show", cwd=git_repo)
    assert proc.returncode == 2 and "worktree.setup" in proc.stdout + proc.stderr


@pytest.mark.usefixtures("fake_claude")
def test_dry_run_lists_files_setup_and_ports(git_repo: Path, tmp_path: Path) -> None:
    _checkout_with_local_files(git_repo, tmp_path / "secret.txt")
    root = make_spec(git_repo, [{"task-001": "@script marker"}], extra={"setup": "make deps"})
    task_file = root / "tasks" / "task-001.md"
    task_file.write_text(task_file.read_text().replace("deps: []", "deps: []\nsetup: make db"))
    git(git_repo, "rm", "-q", "--cached", "notes.txt", "notes-included.txt")
    git(git_repo, "commit", "-q", "-am", "task setup")
    proc = cpo("run", str(root), "--dry-run", "--allow-dirty", cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (
        "every worktree gets 5 file(s) named by .worktreeinclude: .claude/settings.local.json, "
        ".env, in.link, notes-included.txt, out.link" in proc.stdout
    )
    assert "setup in every worktree, the integration worktree too: make deps" in proc.stdout
    assert "    setup: make db" in proc.stdout
    assert f"shared (linked to {git_repo}'s copy): none" in proc.stdout
    assert "each running task holds 10 ports from 20000-29999 ($CPO_PORT)" in proc.stdout
    doc = json.loads(
        cpo("run", str(root), "--dry-run", "--allow-dirty", "--json", cwd=git_repo).stdout
    )
    assert doc["setup"] == ["make deps"] and doc["tasks"][0]["setup"] == ["make db"]
    assert ".env" in doc["included_files"]


@pytest.mark.usefixtures("fake_claude")
def test_shared_folder_is_linked_to_one_copy_that_cleaning_never_empties(git_repo: Path) -> None:
    (git_repo / ".gitignore").write_text("node_modules/\n")
    (git_repo / ".worktreeinclude").write_text("node_modules/\n")  # shared wins: not copied
    root = make_spec(
        git_repo,
        [
            {
                "task-001": "@script require node_modules/pkg/index.js\n@script write a.txt a\n"
                "@script commit\n@script marker"
            }
        ],
        extra={"share": ["node_modules"]},
    )
    (git_repo / "node_modules" / "pkg").mkdir(parents=True)
    (git_repo / "node_modules" / "pkg" / "index.js").write_text("module.exports = 1\n")
    proc = cpo("run", str(root), cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tree = Path(report(root)["tasks"]["task-001"]["worktree"])
    assert (tree / "node_modules").is_symlink()
    assert (tree / "node_modules").resolve() == (git_repo / "node_modules").resolve()
    assert git(tree, "status", "--porcelain") == ""
    files = git(git_repo, "ls-tree", "-r", "--name-only", "integration/TS-0042").splitlines()
    assert not any(f.startswith("node_modules") for f in files)
    git(tree, "clean", "-q", "-fdx")  # what a retry's reset does
    assert proc.returncode == 0 and not (tree / "node_modules").exists()
    assert (git_repo / "node_modules" / "pkg" / "index.js").exists()
    (tree / "node_modules").symlink_to(git_repo / "node_modules")
    proc = cpo("clean", str(root), cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not tree.exists()
    assert (git_repo / "node_modules" / "pkg" / "index.js").exists()


@pytest.mark.usefixtures("fake_claude")
def test_failed_integration_setup_fails_the_wave_before_its_validation(git_repo: Path) -> None:
    root = make_spec(
        git_repo,
        [{"task-001": "@script write a.txt a\n@script commit\n@script marker"}],
        validation={1: "touch validated"},
        # Task worktrees have a CPO_TASK_ID, the integration worktree none.
        extra={"setup": 'test -n "$CPO_TASK_ID" || exit 5', "env": {"WHERE": "x"}},
    )
    proc = cpo("run", str(root), cwd=git_repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    data = report(root)
    assert data["tasks"]["task-001"]["status"] == "completed"
    wave = data["waves"][0]
    assert wave["status"] == "failed"
    assert wave["validation_output_tail"] == (
        "[cpo] validation not run: the integration worktree's setup command "
        "'test -n \"$CPO_TASK_ID\" || exit 5' failed (exit code 5); see logs/integration-setup.log"
    )
    assert not (Path(data["integration_worktree"]) / "validated").exists()
    assert "exit code 5" in (root / "logs" / "integration-setup.log").read_text()


def test_validate_shows_setup_env_and_share(git_repo: Path) -> None:
    root = write_dir(
        git_repo / "parallel" / "TS-1",
        cpo_manifest(
            [{"id": "task-001"}],
            setup=["make deps"],
            env={"API_TOKEN": "s3cret-value"},
            share=["node_modules"],
        ),
        {"task-001.md": task_md({"id": "task-001", "setup": "make db", "env": {"DB": "t1"}})},
    )
    proc = cpo("validate", str(root), cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for line in ("setup: make deps", "env: API_TOKEN", "share: node_modules"):
        assert f"\n{line}\n" in proc.stdout
    assert "      setup: make db\n      env: DB\n" in proc.stdout
    assert "s3cret-value" not in proc.stdout
    doc = json.loads(cpo("validate", str(root), "--json", cwd=git_repo).stdout)
    assert doc["setup"] == ["make deps"] and doc["env"] == ["API_TOKEN"]
    assert doc["tasks"][0]["setup"] == ["make db"] and doc["tasks"][0]["env"] == ["DB"]


def test_a_file_where_the_branch_has_a_file_for_its_folder_is_skipped(
    git_repo: Path, tmp_path: Path
) -> None:
    """The user's checkout has conf/local.ini (ignored); the task's branch tracks a file `conf`."""
    tree = tmp_path / "wt"
    git(git_repo, "worktree", "add", "-q", str(tree), "-b", "feature/x")
    (tree / "conf").write_text("a file on this branch\n")
    (git_repo / "conf").mkdir()
    (git_repo / "conf" / "local.ini").write_text("x=1\n")
    (git_repo / ".env").write_text("X=1\n")
    copied, skipped = copy_included(git_repo, ["conf/local.ini", ".env"], tree)
    assert copied == 1 and (tree / ".env").exists()
    assert len(skipped) == 1 and skipped[0].startswith("conf/local.ini: cannot be copied: ")


def test_setup_installs_a_local_package_the_agent_then_imports(git_repo: Path) -> None:
    """The issue's case: setup makes a virtualenv holding the project; the agent uses it."""
    (git_repo / ".gitignore").write_text(".venv/\n")
    (git_repo / "src").mkdir()
    (git_repo / "src" / "greet.py").write_text("def hi() -> str:\n    return 'hi'\n")
    install = (
        "python3 -m venv --without-pip .venv && "
        '.venv/bin/python -c "import site, os; '
        "open(site.getsitepackages()[0] + '/project.pth', 'w').write(os.getcwd() + '/src')\""
    )
    root = make_spec(git_repo, [{"task-001": "use it"}], extra={"setup": install})
    agent = (
        '.venv/bin/python -c \'import greet; open("out.txt", "w").write(greet.hi())\' && '
        "git add out.txt && git commit -q -m out && echo '{}' > .claude-task-complete"
    )
    proc = cpo("run", str(root), "--backend", "command", "--agent-command", agent, cwd=git_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert git(git_repo, "show", "integration/TS-0042:out.txt") == "hi"
    files = git(git_repo, "ls-tree", "-r", "--name-only", "integration/TS-0042").splitlines()
    assert not any(f.startswith(".venv") for f in files)
