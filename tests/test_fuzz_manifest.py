"""Damaged manifests and task files: every outcome is a Plan or a CpoError, nothing else.

2,000 examples per property when CI=true (the `cpo-ci` profile), fewer locally.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from cpo.agents import backend_names
from cpo.errors import CpoError, PlanError
from cpo.plan.load import load_plan
from cpo.plan.manifest import Report, read_manifest
from cpo.plan.model import Plan
from cpo.plan.models import manifest_json_schema

settings.register_profile(
    "cpo-ci",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "cpo-dev",
    max_examples=75,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = settings.get_profile("cpo-ci" if os.environ.get("CI") == "true" else "cpo-dev")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cpo-style"
BASE_MANIFEST: dict[str, Any] = json.loads((EXAMPLE / "manifest.json").read_text())
BASE_TASKS = {p.name: p.read_text() for p in (EXAMPLE / "tasks").iterdir()}
KNOWN_KEYS = [
    "id",
    "wave",
    "deps",
    "depends_on",
    "blocks",
    "component",
    "prompt_file",
    "timeout",
    "max_turns",
    "agent",
    "model",
    "contracts",
    "tech_spec_id",
    "waves",
    "tasks",
    "number",
    "validation",
    "metadata",
    "max_parallel",
    "files",
    "python",
    "shell",
    "tech_spec",
    "task_file",
]

HUGE = "__huge_int__"
keys = st.sampled_from(KNOWN_KEYS) | st.text(max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(
        [
            *KNOWN_KEYS,
            "task-001",
            "task-002",
            "../x",
            "/etc/passwd",
            "prompts/task-001.txt",
            "a b",
            "\ud800",
            "ü" * 3,
            "",
        ]
    )
    | st.just(HUGE)  # replaced by an integer literal past Python's 4,300-digit limit
    | st.just("x" * 200_000)
)
values = st.recursive(
    scalars,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(keys, c, max_size=4),
    max_leaves=12,
)


def deep(n: int) -> Any:
    out: Any = "x"
    for _ in range(n):
        out = [out]
    return out


@st.composite
def mutated_manifest(draw: st.DrawFn) -> str:
    doc: Any = json.loads(json.dumps(BASE_MANIFEST))
    for _ in range(draw(st.integers(1, 4))):
        # walk to a random container and change one thing in it
        node = doc
        for _ in range(draw(st.integers(0, 4))):
            children = (
                list(node.values())
                if isinstance(node, dict)
                else (node if isinstance(node, list) else [])
            )
            children = [c for c in children if isinstance(c, (dict, list))]
            if not children:
                break
            node = draw(st.sampled_from(children))
        action = draw(st.sampled_from(["set", "delete", "rename", "deep"]))
        if isinstance(node, dict):
            key = draw(st.sampled_from(list(node) or ["id"]) | keys)
            if action == "delete":
                node.pop(key, None)
            elif action == "rename" and key in node:
                node[draw(keys)] = node.pop(key)
            else:
                node[key] = deep(draw(st.integers(50, 900))) if action == "deep" else draw(values)
        elif isinstance(node, list):
            if node and action == "delete":
                node.pop(draw(st.integers(0, len(node) - 1)))
            else:
                node.append(draw(values))
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()), allow_nan=True)
    text = text.replace(f'"{HUGE}"', "9" * 5000)
    return draw(damaged(text))


@st.composite
def damaged(draw: st.DrawFn, text: str) -> str:
    """Sometimes damage the text itself: cut, insert, delete, or nest it deeply."""
    kind = draw(st.sampled_from(["none", "none", "cut", "insert", "delete", "nest"]))
    if not text or kind == "none":
        return text
    at = draw(st.integers(0, len(text)))
    if kind == "cut":
        return text[:at]
    if kind == "insert":
        junk = draw(
            st.text(min_size=1, max_size=8)
            | st.sampled_from(
                [
                    "{",
                    "]",
                    ",",
                    '"',
                    ":",
                    "\n---\n",
                    "\t",
                    "\x00",
                    "&a",
                    "*a",
                    "!!python/object:os.system",
                    "- ",
                    "? ",
                    "|",
                    ">",
                ]
            )
        )
        return text[:at] + junk + text[at:]
    if kind == "delete":
        return text[:at] + text[at + draw(st.integers(1, 10)) :]
    n = draw(st.integers(100, 5000))
    return text[:at] + "[" * n + text[at:]


@st.composite
def mutated_task(draw: st.DrawFn) -> tuple[str, str]:
    name = draw(st.sampled_from(sorted(BASE_TASKS)))
    text = BASE_TASKS[name]
    _, fm, body = text.split("---\n", 2)
    meta = yaml.safe_load(fm)
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(list(meta)) | keys)
        if draw(st.booleans()):
            meta[key] = draw(values)
        else:
            meta.pop(key, None)
    try:
        fm = yaml.safe_dump(meta, allow_unicode=draw(st.booleans()))
    except yaml.YAMLError:
        fm = "id: task-001\n"
    fm = fm.replace(HUGE, "9" * 5000)
    body = draw(st.sampled_from([body, "", "## Scope\nCREATE: " + "a/" * 500, body * 3]))
    return name, draw(damaged("---\n" + fm + "---\n" + body))


def check(root: Path) -> None:
    try:
        plan = load_plan(root)
    except PlanError as exc:
        assert exc.problems, "PlanError without problems"
        for p in exc.problems + exc.warnings:
            assert isinstance(p.file, str) and isinstance(p.message, str) and p.message
            str(p)
    except CpoError as exc:
        assert exc.lines()
    else:
        assert isinstance(plan, Plan)
        for task in plan.tasks.values():
            assert task.prompt and len(task.content_hash) == 67


_WORK: list[Path] = []


def work_dir() -> Path:
    """One copy of the example, shared by all examples of the session (each example restores
    what it changed), because copying a tree per example would dominate the run time."""
    if not _WORK:
        root = Path(tempfile.mkdtemp(prefix="cpo-fuzz-")) / "p"
        shutil.copytree(EXAMPLE, root)
        atexit.register(shutil.rmtree, root.parent, True)
        _WORK.append(root)
    return _WORK[0]


def run_with(files: dict[str, bytes | None]) -> None:
    """Write `files` (None: delete) into the shared directory, check it, restore it."""
    root = work_dir()
    try:
        for rel, data in files.items():
            path = root / rel
            if data is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(data)
        check(root)
    finally:
        for rel in files:
            (root / rel).write_bytes((EXAMPLE / rel).read_bytes())


def encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


@PROFILE
@given(mutated_manifest())
def test_mutated_manifest_gives_plan_or_cpo_error(manifest: str) -> None:
    run_with({"manifest.json": encode(manifest)})


@PROFILE
@given(st.lists(mutated_task(), min_size=1, max_size=3), st.booleans())
def test_mutated_task_files_give_plan_or_cpo_error(
    tasks: list[tuple[str, str]], drop_manifest: bool
) -> None:
    files: dict[str, bytes | None] = {f"tasks/{name}": encode(text) for name, text in tasks}
    if drop_manifest:
        files["manifest.json"] = None
    run_with(files)


@PROFILE
@given(st.binary(max_size=300), st.binary(max_size=300))
def test_random_bytes_give_plan_or_cpo_error(manifest: bytes, task: bytes) -> None:
    run_with({"manifest.json": manifest, "tasks/task-002-format.md": task})


# ---------------------------------------------------------------- the JSON Schema

SCHEMA = Draft202012Validator(manifest_json_schema())


def cpo_accepts(text: str) -> bool:
    """Whether cpo reads this manifest.json without a problem (joins with task files aside)."""
    root = work_dir()
    try:
        (root / "manifest.json").write_bytes(encode(text))
        report = Report()
        manifest = read_manifest(root, os.path.realpath(root), report)
        return manifest is not None and manifest.model is not None and not report.problems
    finally:
        (root / "manifest.json").write_bytes((EXAMPLE / "manifest.json").read_bytes())


def schema_errors(text: str) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in SCHEMA.iter_errors(json.loads(text))]


durations = st.one_of(
    st.integers(1, 10**6),
    st.floats(0.001, 1e6),
    st.builds(lambda n, u: f"{n}{u}", st.integers(1, 999), st.sampled_from(["", "s", "m", "h"])),
    st.sampled_from(["1.5h", "90s", " 20m ", "0.5"]),
)
names = st.text(st.characters(codec="utf-8"), max_size=12)
task_ids = st.from_regex(r"task-[0-9]{3}[a-z-]{0,6}", fullmatch=True)
options = st.fixed_dictionaries(
    {"id": task_ids},
    optional={
        "component": names,
        "wave": st.integers(1, 9),
        "deps": st.lists(task_ids, max_size=3),
        "depends_on": st.lists(task_ids, max_size=3),
        "blocks": st.lists(task_ids, max_size=3),
        "agent": names,
        "skills": st.lists(names, max_size=3),
        "contracts": st.lists(names, max_size=3),
        "backend": st.sampled_from(backend_names()),
        "model": names,
        "timeout": durations,
        "estimate": durations,
        "max_turns": st.integers(1, 500),
        "permission_mode": names,
        "prompt_file": names | st.none(),
        "task_file": names,
        "file": names,
        "x-other-tool": values,
    },
)
validations = st.one_of(
    st.none(),
    names,
    st.fixed_dictionaries({"python": names}),
    st.fixed_dictionaries({"shell": names}),
    st.lists(names | st.fixed_dictionaries({"shell": names}), max_size=3),
)
waves = st.fixed_dictionaries(
    {"tasks": st.lists(task_ids | options, max_size=4)},
    optional={
        "number": st.integers(1, 20),
        "validation": validations,
        "notes": values,
    },
)
cpo_style = st.fixed_dictionaries(
    {"tech_spec_id": names, "waves": st.lists(waves, max_size=4)},
    optional={
        "name": names | st.none(),
        "technology": names,
        "max_parallel": st.integers(1, 64),
        "metadata": st.fixed_dictionaries(
            {}, optional={"max_parallel": st.integers(1, 64), "critical_path": values}
        ),
        "execution": values,
    },
)
legacy_style = st.fixed_dictionaries(
    {
        "tech_spec": st.fixed_dictionaries({"id": names}, optional={"title": names}),
        "tasks": st.fixed_dictionaries(
            {"files": st.lists(names, max_size=3)},
            optional={"total": st.integers(0, 99), "waves": st.integers(0, 9)},
        ),
    },
    optional={"version": names, "technology": names},
)


@PROFILE
@given(cpo_style | legacy_style)
def test_valid_manifests_fit_the_schema(doc: dict[str, Any]) -> None:
    text = json.dumps(doc)
    assert cpo_accepts(text)
    assert schema_errors(text) == []


@PROFILE
@given(mutated_manifest())
def test_schema_accepts_exactly_what_cpo_accepts(manifest: str) -> None:
    try:
        json.loads(manifest)
        manifest.encode("utf-8")  # a lone surrogate: not UTF-8, so not a JSON document
    except (ValueError, RecursionError):
        return
    assert cpo_accepts(manifest) == (schema_errors(manifest) == [])
