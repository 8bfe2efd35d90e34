"""The command line's surface: the commands `cpo --help` lists, in their order, and the
help of each (the commands live in several modules, registered by cpo/cli.py)."""

from __future__ import annotations

from pathlib import Path

from tests.runkit import cpo

COMMANDS = ["validate", "init", "schema", "run", "parallel", "serve", "status", "demo"]
COMMANDS += ["clean", "integrate", "worker", "config", "templates"]
SUBCOMMANDS = {"worker": "run-task", "config": "show", "templates": "install"}


def test_help_lists_every_command_in_its_order(tmp_path: Path) -> None:
    out = cpo("--help", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    listed = [line.split()[0] for line in lines[lines.index("Commands:") + 1 :] if line.strip()]
    assert listed == COMMANDS


def test_every_command_shows_its_help(tmp_path: Path) -> None:
    for name in COMMANDS:
        words = [name, SUBCOMMANDS[name]] if name in SUBCOMMANDS else [name]
        out = cpo(*words, "--help", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        usage = out.stdout.splitlines()[0]  # `Usage: python -m cpo run [OPTIONS] ...`
        assert usage.startswith("Usage: ") and f" cpo {' '.join(words)} " in usage, out.stdout
