"""Slash command templates and `cpo templates install`, in real repositories."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.runkit import cpo, make_spec

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
NAMES = ["parallel-run.md", "parallel-status.md"]


def _frontmatter(text: str) -> dict[str, str]:
    assert text.startswith("---\n")
    data = yaml.safe_load(text.split("---\n", 2)[1])
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("name", NAMES)
def test_templates_are_claude_code_commands(name: str) -> None:
    text = (TEMPLATES / name).read_text()
    meta = _frontmatter(text)
    assert meta["description"] and meta["argument-hint"].startswith("<parallel-dir>")
    assert "Bash(cpo:*)" in meta["allowed-tools"]
    body = text.split("---\n", 2)[2]
    assert "$ARGUMENTS" in body
    assert "cpo status <dir> --json" in body
    assert "next_step" in body and "exit codes" in body.lower()


def test_run_template_covers_run_validate_status() -> None:
    body = (TEMPLATES / "parallel-run.md").read_text()
    for text in (
        "cpo run <dir>",
        "cpo validate <dir>",
        "cpo status <dir>",
        "report.json",
        "logs/<task-id>.log",
        "--resume",
        "--retry-failed",
        "`130`",
    ):
        assert text in body, text


def test_install_into_the_repository(git_repo: Path) -> None:
    sub = git_repo / "src" / "deep"
    sub.mkdir(parents=True)
    proc = cpo("templates", "install", cwd=sub)
    assert proc.returncode == 0, proc.stderr
    dest = git_repo / ".claude" / "commands"
    for name in NAMES:
        assert (dest / name).read_text() == (TEMPLATES / name).read_text()
        assert f"installed   {dest / name}" in proc.stdout
    assert "/parallel-run, /parallel-status" in proc.stdout


def test_existing_files_are_skipped_unless_forced(git_repo: Path) -> None:
    dest = git_repo / ".claude" / "commands"
    dest.mkdir(parents=True)
    mine = dest / "parallel-run.md"
    mine.write_text("my own version\n")

    proc = cpo("templates", "install", cwd=git_repo)
    assert proc.returncode == 0, proc.stderr
    assert mine.read_text() == "my own version\n"
    assert f"skipped     {mine} (exists; --force to overwrite)" in proc.stdout
    assert (dest / "parallel-status.md").exists()

    proc = cpo("templates", "install", "--force", cwd=git_repo)
    assert proc.returncode == 0, proc.stderr
    assert mine.read_text() == (TEMPLATES / "parallel-run.md").read_text()
    assert f"overwrote   {mine}" in proc.stdout


def test_user_install_goes_to_home(tmp_path: Path) -> None:
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    proc = cpo("templates", "install", "--user", cwd=outside)
    assert proc.returncode == 0, proc.stderr
    dest = Path(os.environ["HOME"]) / ".claude" / "commands"
    assert sorted(p.name for p in dest.iterdir()) == NAMES

    proc = cpo("templates", "install", cwd=outside)
    assert proc.returncode == 2
    assert "is not inside a git repository" in proc.stderr


def test_packaged_templates_are_found_first(tmp_path: Path) -> None:
    """The wheel's layout (cpo/_templates) wins over a source checkout's templates/."""
    site = tmp_path / "site"
    shutil.copytree(
        TEMPLATES.parent / "cpo", site / "cpo", ignore=shutil.ignore_patterns("__pycache__")
    )
    (site / "cpo" / "_templates").mkdir()
    for name in NAMES:
        text = (TEMPLATES / name).read_text() + "<!-- packaged -->\n"
        (site / "cpo" / "_templates" / name).write_text(text)
    code = (
        "from cpo.commands.templates import template_files\n"
        "files = template_files()\n"
        "print(sorted(files), all(t.endswith('<!-- packaged -->\\n') for t in files.values()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == f"{NAMES} True"


_CPO_COMMAND = re.compile(r"`(cpo [^`]+)`")


def _commands(name: str, parallel_dir: str) -> list[list[str]]:
    """Every `cpo ...` command a template names, rendered for `parallel_dir`."""
    body = (TEMPLATES / name).read_text().replace("$ARGUMENTS", parallel_dir)
    found = []
    for text in _CPO_COMMAND.findall(body):
        if "<dir>" not in text:
            continue  # prose such as "a second `cpo run`"
        text = re.sub(r"\[[^\]]*\]", "", text).replace("<dir>", shlex.quote(parallel_dir))
        if "<" not in text:  # other placeholders (`--wave <N>`)
            found.append(shlex.split(text))
    return found


def test_every_command_the_templates_name_works(git_repo: Path, fake_claude: Path) -> None:
    root = make_spec(git_repo, [{"task-001": "@script marker"}], validation={1: "true"})
    names = [cmd for name in NAMES for cmd in _commands(name, str(root))]
    assert ["cpo", "run", str(root), "--json"] in names
    assert ["cpo", "status", str(root), "--json"] in names
    seen: set[tuple[str, ...]] = set()
    started = False
    # A run first (its dry run before), then what reads or follows it, clean last.
    order = {"validate": 0, "run": 1, "status": 2, "integrate": 3, "clean": 4}
    dry = cpo("run", str(root), "--json", "--dry-run", cwd=git_repo)
    assert json.loads(dry.stdout)["dry_run"] is True
    for argv in sorted(names, key=lambda a: order[a[1]]):
        if tuple(argv) in seen:
            continue
        seen.add(tuple(argv))
        out = cpo(*argv[1:], cwd=git_repo)
        if argv[1] == "run" and not set(argv) & {"--resume", "--retry-failed"} and started:
            # a second fresh run of a directory is refused, with the way on
            assert out.returncode == 2 and "--resume" in out.stderr, (argv, out.stderr)
            continue
        started = started or argv[1] == "run"
        assert out.returncode in (0, 1), (argv, out.stdout, out.stderr)
        if "--json" in argv:
            json.loads(out.stdout)
    assert {a[1] for a in names} >= {"validate", "run", "status", "integrate", "clean"}
