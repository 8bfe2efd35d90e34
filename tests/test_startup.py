"""Start-up: a command loads only what it needs (rich only where something is drawn)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from tests.runkit import cpo, make_spec

# Runs one cpo command in a fresh interpreter, then names the heavy packages it loaded.
LOADED = """
import sys
from cpo.cli import main
sys.argv = ["cpo", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print("LOADED", *sorted({m.split(".")[0] for m in sys.modules} & {"rich", "pydantic"}))
"""


def _loaded(cwd: Path, *args: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", LOADED, *args], cwd=cwd, capture_output=True, text=True, check=False
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("LOADED"))
    return set(line.split()[1:])


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("status", "parallel/TS-0042", "--json"),
        ("run", "parallel/TS-0042", "--dry-run", "--json"),
        ("run", "parallel/TS-0042", "--dry-run"),  # to a pipe: plain lines
        ("validate", "parallel/TS-0042", "--json"),
    ],
)
def test_json_quiet_and_piped_output_do_not_load_rich(git_repo: Path, args: tuple[str]) -> None:
    """Before: every command but --help imported rich (~50 modules) through cpo.ui."""
    make_spec(git_repo, [{"task-001": "Do it."}])
    assert "rich" not in _loaded(git_repo, *args)


def test_status_without_json_still_draws_with_rich(git_repo: Path) -> None:
    root = make_spec(git_repo, [{"task-001": "Do it."}])
    agent = ("--backend", "command", "--agent-command", ": > .claude-task-complete")
    assert cpo("run", str(root), *agent, cwd=git_repo).returncode == 0
    assert "rich" in _loaded(git_repo, "status", "parallel/TS-0042")
    assert "rich" not in _loaded(git_repo, "status", "parallel/TS-0042", "--json")


def _cpo_modules() -> list[ModuleType]:
    import cpo

    names = [m.name for m in pkgutil.walk_packages(cpo.__path__, "cpo.")]
    return [importlib.import_module(n) for n in names if not n.startswith("cpo.scripted.")]


def test_annotations_read_at_start_up_are_not_strings() -> None:
    """typer (every option of every command) and pydantic (every field of every model)
    read these annotations as cpo starts; as strings (`from __future__ import
    annotations`) each is compiled and evaluated first: ~30 ms of `cpo run`'s start-up.
    Before: every one of them was a string."""
    from pydantic import BaseModel

    from cpo.cli import app

    stringly: list[str] = []
    apps = [app, *(g.typer_instance for g in app.registered_groups)]
    commands = [c.callback for a in apps for c in a.registered_commands]
    commands += [a.registered_callback.callback for a in apps if a.registered_callback]
    assert len(commands) > 10
    for fn in commands:
        assert fn is not None
        if any(isinstance(a, str) for a in inspect.get_annotations(fn).values()):
            stringly.append(f"{fn.__module__}.{fn.__name__}")
    for module in _cpo_modules():
        for obj in vars(module).values():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseModel)
                and obj.__module__ == module.__name__
                and any(isinstance(a, str) for a in inspect.get_annotations(obj).values())
            ):
                stringly.append(f"{module.__name__}.{obj.__name__}")
    assert not stringly, "string annotations read at start-up: " + ", ".join(stringly)


# Imports what `cpo run` imports, then names the models meant to be built at first use
# (`defer_build`) that the imports built anyway.
BUILT = """
import pydantic
import cpo.cli, cpo.run.engine, cpo.run.hooks, cpo.run.ready
def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)
built = sorted(
    f"{m.__module__}.{m.__qualname__}"
    for m in subclasses(pydantic.BaseModel)
    if m.__module__.startswith("cpo.")
    and m.model_config.get("defer_build")
    and m.__pydantic_complete__
)
print("BUILT", *built)
"""


def test_models_built_at_first_use_are_not_built_by_the_imports() -> None:
    """A deferred model is built by its first validation, or by a default instance of it in
    another model's class body. Before: the settings file's sections were all built at
    import by `ConfigFile`'s defaults (~6 ms of every start), though most runs have no
    settings file."""
    out = subprocess.run(
        [sys.executable, "-c", BUILT], capture_output=True, text=True, check=True
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("BUILT"))
    assert line.split()[1:] == []


def test_the_watchdog_process_imports_only_modules_that_load_in_no_time() -> None:
    """It starts beside every run's first checkouts, on the cores they want. Before: it
    loaded site-packages, enum (through signal), subprocess and threading: ~26 ms of CPU
    against ~10 now."""
    import cpo.watchdog
    from cpo.watchdogclient import Watchdog

    dog = Watchdog(grace=1, run_id="startup-test")
    dog.start()
    try:
        assert dog.pid is not None
        cmdline = Path(f"/proc/{dog.pid}/cmdline")
        for _ in range(500):  # empty for a moment while the exec completes
            if argv := cmdline.read_bytes().split(b"\0")[:-1]:
                break
            time.sleep(0.01)
    finally:
        dog.stop()
    script = cpo.watchdog.__file__
    assert [a.decode() for a in argv[1:4]] == ["-I", "-S", script]
    # The same command with -X importtime, stdin at its end at once: it exits right away.
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *[a.decode() for a in argv[1:]]],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}
    assert not loaded & {"site", "enum", "subprocess", "threading", "contextlib"}


# Goes through the entry point as the `cpo` command does, then reports the collector.
ENTRY = """
import gc, sys
import cpo.__main__ as entry
print("PAUSED", not gc.isenabled(), "typer" in sys.modules)
sys.argv = ["cpo", *sys.argv[1:]]
try:
    entry.main()
except SystemExit:
    pass
print("RESUMED", gc.isenabled(), gc.get_freeze_count() > 0)
"""


@pytest.mark.parametrize(
    "args",
    [
        ("validate", "parallel/TS-0042", "--json"),  # ends the pause with its imports
        ("schema", "report"),  # a command that imports nothing heavy: at its end
        ("run", "parallel/TS-9999"),  # an error before the command's imports
        ("--help",),
    ],
)
def test_the_entry_point_pauses_the_collector_until_the_command_starts(
    git_repo: Path, args: tuple[str, ...]
) -> None:
    """typer's import and its parsing (pydantic's import, a type adapter per option) made
    ~18 ms of CPU of collections at every start. Before: the collector ran through them
    (no pause before the command's own imports)."""
    make_spec(git_repo, [{"task-001": "Do it."}])
    out = subprocess.run(
        [sys.executable, "-c", ENTRY, *args], cwd=git_repo, capture_output=True, text=True
    ).stdout
    assert "PAUSED True True" in out
    assert "RESUMED True True" in out


def test_the_cpo_command_goes_through_the_entry_point() -> None:
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    assert 'cpo = "cpo.__main__:main"' in pyproject.read_text()
