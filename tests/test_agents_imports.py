"""cpo/agents and cpo/adhoc keep their place: no import cycles (lazy imports included)
and no import upwards, read from the source."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

CPO = Path(__file__).parent.parent / "cpo"


def _imports(package: str) -> dict[str, set[str]]:
    """Module -> the cpo modules it imports anywhere in its source (functions included)."""
    graph: dict[str, set[str]] = {}
    for path in sorted((CPO / package).glob("*.py")):
        name = f"cpo.{package}" + ("" if path.stem == "__init__" else f".{path.stem}")
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                deps.add(node.module)
                deps.update(f"{node.module}.{a.name}" for a in node.names)
        graph[name] = {d for d in deps if d.startswith("cpo") and d != name}
    return graph


def test_no_import_cycles() -> None:
    for package in ("agents", "adhoc"):
        graph = _imports(package)
        # raises CycleError naming the modules of a cycle
        tuple(
            graphlib.TopologicalSorter({k: v & set(graph) for k, v in graph.items()}).static_order()
        )


def test_no_imports_upwards() -> None:
    for module, deps in _imports("agents").items():
        assert not {
            d
            for d in deps
            if not d.startswith(("cpo.agents", "cpo.errors", "cpo.proc", "cpo.suggest"))
        }, module
    for module, deps in _imports("run").items():
        assert not {d for d in deps if d.startswith("cpo.adhoc")}, module
