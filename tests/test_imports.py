"""The shape of the package: no import cycles, the import rules each package's docstring
states, and no module grown past a reviewable size.

The static checks read every module with `ast`, counting imports inside functions (lazy
ones) too: a lazy import that closes a cycle still means two concepts lean on each other.
Imports under `if TYPE_CHECKING:` are left out, since they never run.
"""

from __future__ import annotations

import ast
import graphlib
import importlib.util
import json
import subprocess
import sys
from collections.abc import Collection
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "cpo"

# Longest a module may be.
MAX_LINES = 420

# The command line: cpo.cli (the app, `main`) and the modules of its commands.
CLI = ("cpo.cli", "cpo.cliargs", "cpo.cliinfo", "cpo.clirepo", "cpo.clirun", "cpo.cliserve")


@dataclass(frozen=True)
class Import:
    target: str  # the module imported, absolute (`cpo.run.report`, `typer`, `os.path`)
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST) -> list[ast.AST]:
    """Every node under `node`, skipping the bodies of `if TYPE_CHECKING:`."""
    found: list[ast.AST] = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child):
            for other in child.orelse:
                found.append(other)
                found.extend(_walk(other))
            continue
        found.append(child)
        found.extend(_walk(child))
    return found


def parse_imports(
    source: str, name: str, *, is_package: bool, known: Collection[str]
) -> tuple[Import, ...]:
    """What module `name` imports, resolved to absolute module names. `from pkg import x`
    counts as importing `pkg.x` when that is one of the `known` modules, else `pkg`."""
    package = name if is_package else name.rpartition(".")[0]
    found: list[Import] = []
    for node in _walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend(Import(alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append(Import(sub if sub in known else base, node.lineno))
    return tuple(found)


@cache
def imports_of(name: str) -> tuple[Import, ...]:
    path = modules()[name]
    return parse_imports(
        path.read_text(), name, is_package=path.name == "__init__.py", known=modules()
    )


def internal_graph() -> dict[str, set[str]]:
    return {
        name: {imp.target for imp in imports_of(name) if imp.target in modules()} - {name}
        for name in modules()
    }


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(source_prefix: str, forbidden: tuple[str, ...]) -> list[str]:
    """`file:line: imports X` for each import by a module under `source_prefix` of a
    module under one of `forbidden`."""
    bad = []
    for name, path in modules().items():
        if not within(name, source_prefix):
            continue
        for imp in imports_of(name):
            if any(within(imp.target, f) for f in forbidden):
                bad.append(f"{path.relative_to(ROOT)}:{imp.line}: imports {imp.target}")
    return bad


# -- cycles ------------------------------------------------------------------------------


def test_the_import_graph_has_no_cycle() -> None:
    try:
        graphlib.TopologicalSorter(internal_graph()).prepare()
    except graphlib.CycleError as exc:
        pytest.fail("import cycle: " + " -> ".join(exc.args[1]))


def test_lazy_and_relative_imports_are_seen() -> None:
    # The checks above trust parse_imports alone, so it is checked on every import form.
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import sibling\n"
        "from .. import other\n"
        "from ..pkg2.mod import name\n"
        "import os.path\n"
        "if TYPE_CHECKING:\n    import never\n"
        "else:\n    import otherwise\n"
        "def f():\n    from cpo.pkg import helper\n"
    )
    known = {"cpo.pkg.sibling", "cpo.other", "cpo.pkg2.mod"}
    found = parse_imports(source, "cpo.pkg.mod", is_package=False, known=known)
    assert [i.target for i in found] == [
        "typing",
        "cpo.pkg.sibling",
        "cpo.other",
        "cpo.pkg2.mod",
        "os.path",
        "otherwise",
        "cpo.pkg",
    ]
    as_package = parse_imports("from . import sibling", "cpo.pkg", is_package=True, known=known)
    assert [i.target for i in as_package] == ["cpo.pkg.sibling"]


ISOLATED_IMPORT = """
import importlib, json, sys, traceback
failed = {}
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "cpo" or m.startswith("cpo.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except BaseException:
        failed[name] = traceback.format_exc(limit=-3)
print(json.dumps(failed))
"""


def test_every_module_imports_on_its_own() -> None:
    # One interpreter, but every cpo module is dropped from sys.modules before each import,
    # so each one is imported first, as `python -m` or a lazy import elsewhere would.
    # cpo.serve needs the [serve] extra; without it only the command's message is checked
    # (tests/serve/test_serve_api.py).
    extra = importlib.util.find_spec("fastapi") is not None
    names = [m for m in modules() if extra or not within(m, "cpo.serve")]
    proc = subprocess.run(
        [sys.executable, "-c", ISOLATED_IMPORT, *names],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    failed = json.loads(proc.stdout.splitlines()[-1])
    assert not failed, "\n".join(f"{name}:\n{tb}" for name, tb in failed.items())


# -- the rules the package docstrings state ----------------------------------------------


def cli_file(violation: str) -> bool:
    """Whether `file:line: imports X` is by one of the command line's modules."""
    return violation.partition(":")[0] in {f"{m.replace('.', '/')}.py" for m in CLI}


def test_the_cli_modules_are_the_ones_listed() -> None:
    # A new cpo/cli*.py module is in CLI, so the rules below cover it.
    assert {m for m in modules() if m.startswith("cpo.cli")} == set(CLI)


def test_only_cli_imports_typer() -> None:
    bad = [v for v in violations("cpo", ("typer",)) if not cli_file(v)]
    assert not bad, "\n".join(bad)


def test_run_never_imports_the_commands_around_it() -> None:
    bad = violations("cpo.run", ("cpo.commands", "cpo.adhoc", *CLI))
    assert not bad, "\n".join(bad)


def beyond(source_prefix: str, allowed: tuple[str, ...], exact: tuple[str, ...] = ()) -> list[str]:
    """`file:line: imports X` for each import by a module under `source_prefix` of a cpo
    module neither under one of `allowed` (or its own package) nor one of `exact`."""
    own = (source_prefix, *allowed)
    return [
        v
        for v in violations(source_prefix, ("cpo",))
        if not any(within(target := v.rpartition(" ")[2], a) for a in own) and target not in exact
    ]


def test_plan_runs_neither_git_nor_an_agent() -> None:
    # `cpo.agents` itself (the backend names) and its backend-neutral modes, never a backend.
    allowed = ("cpo.errors", "cpo.duration", "cpo.suggest")
    bad = beyond("cpo.plan", allowed, exact=("cpo.agents", "cpo.agents.modes"))
    bad += violations("cpo.plan", ("cpo.run", "cpo.git", "cpo.proc", "typer", "rich", "git"))
    assert not bad, "\n".join(bad)


def test_planfile_runs_neither_git_nor_an_agent() -> None:
    bad = beyond("cpo.planfile", ("cpo.errors", "cpo.suggest", "cpo.plan"))
    bad += violations("cpo.planfile", ("cpo.run", "cpo.git", "cpo.proc", "typer", "rich"))
    assert not bad, "\n".join(bad)


def test_run_imports_only_what_its_docstring_lists() -> None:
    allowed = ("cpo.plan", "cpo.agents", "cpo.git", "cpo.proc", "cpo.config", "cpo.errors")
    allowed += ("cpo.logfile", "cpo.secrets", "cpo.suggest", "cpo.planfile", "cpo.orphans")
    allowed += ("cpo.executors",)
    allowed += ("cpo.duration", "cpo.gitmemo", "cpo.gitenv", "cpo.quickimport", "cpo.settings")
    allowed += ("cpo.indexlock",)
    # `cpo` itself is the package's __init__ (for __version__), not every module under it.
    bad = beyond("cpo.run", allowed, exact=("cpo",))
    assert not bad, "\n".join(bad)


def test_commands_and_adhoc_never_import_the_cli() -> None:
    bad = violations("cpo.commands", CLI) + violations("cpo.adhoc", (*CLI, "cpo.commands"))
    assert not bad, "\n".join(bad)


def test_executors_import_only_what_their_docstring_lists() -> None:
    bad = beyond("cpo.executors", ("cpo.errors", "cpo.proc", "cpo.watchdog"))
    assert not bad, "\n".join(bad)


def test_the_worker_imports_only_what_its_docstring_lists() -> None:
    allowed = ("cpo.run", "cpo.executors", "cpo.agents", "cpo.git", "cpo.proc", "cpo.orphans")
    allowed += ("cpo.secrets", "cpo.errors")
    bad = beyond("cpo.worker", allowed)
    assert not bad, "\n".join(bad)


def test_agents_know_nothing_of_runs_or_commands() -> None:
    bad = violations("cpo.agents", ("cpo.run", "cpo.adhoc", "cpo.commands", *CLI))
    assert not bad, "\n".join(bad)


def test_serve_imports_only_what_its_docstring_lists() -> None:
    allowed = ("cpo.commands.status", "cpo.run.report", "cpo.run.lock", "cpo.run.states")
    allowed += ("cpo.adhoc", "cpo.agents", "cpo.config", "cpo.proc", "cpo.secrets")
    allowed += ("cpo.errors", "cpo.duration")
    bad = beyond("cpo.serve", allowed, exact=("cpo",))
    assert not bad, "\n".join(bad)


def test_only_the_cli_imports_serve() -> None:
    bad = [
        v
        for v in violations("cpo", ("cpo.serve",))
        if not cli_file(v) and not v.startswith("cpo/serve/")
    ]
    assert not bad, "\n".join(bad)


# PyYAML reads the `--agent` files' frontmatter, as the real CLI does.
SCRIPTED_MAY_IMPORT = {"yaml"}


def test_scripted_agent_uses_only_the_standard_library_and_yaml() -> None:
    # The shim must start fast and never be shadowed by what the project under test installs.
    bad = []
    for name, path in modules().items():
        if not within(name, "cpo.scripted"):
            continue
        for imp in imports_of(name):
            top = imp.target.split(".")[0]
            if top == "__future__" or top in sys.stdlib_module_names:
                continue
            if top not in SCRIPTED_MAY_IMPORT and not within(imp.target, "cpo.scripted"):
                bad.append(f"{path.relative_to(ROOT)}:{imp.line}: imports {imp.target}")
    assert not bad, "\n".join(bad)


# -- size ----------------------------------------------------------------------------------


def test_no_module_is_over_the_line_limit() -> None:
    long = {
        f"{path.relative_to(ROOT)}: {n} lines"
        for path in modules().values()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"split these by concept (limit {MAX_LINES} lines):\n" + "\n".join(
        sorted(long)
    )
