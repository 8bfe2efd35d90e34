"""`cpo init`: a new parallel directory with a manifest, a sample task and prompt.

It never overwrites a file: existing ones are kept and reported, so running it again
in a half-written directory only fills in what is missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cpo.errors import UsageError
from cpo.plan.names import ref_name_problem
from cpo.plan.prompts import REQUIRED_SECTIONS


@dataclass(frozen=True)
class InitResult:
    root: Path
    created: tuple[Path, ...]
    kept: tuple[Path, ...]  # already there, left untouched


def _manifest(spec_id: str, name: str) -> str:
    doc = {
        "tech_spec_id": spec_id,
        "name": name,
        "technology": "python",
        "waves": [
            {
                "number": 1,
                "tasks": [{"id": "task-001", "prompt_file": "prompts/task-001.txt"}],
                "validation": "python -c \"print('wave 1 OK')\"",
            }
        ],
        "metadata": {"max_parallel": 2},
    }
    return json.dumps(doc, indent=2) + "\n"


_TASK = """---
id: task-001
component: example
wave: 1
deps: []
# optional: agent, model, backend, timeout, max_turns, permission_mode, prompt_file,
# contracts: [contracts/...], blocks: [task-002],
# estimate: 20m (expected agent time; the longest chains and tasks start first)
---
# task-001: Example task

## Scope
CREATE: example/hello.py
BOUNDARY: everything else

## Requirements
- Write `example/hello.py` with `def hello() -> str` returning "hello".

## Checklist
- [ ] `python -c "from example.hello import hello; print(hello())"` prints hello
"""

_SECTION_TEXT = {
    "CONTEXT": "What the project is and what this feature ({spec_id} {name}) adds.",
    "OBJECTIVE": "Create example/hello.py with a hello() function.",
    "CONTRACTS": "(none)",
    "FILES TO CREATE": "- example/hello.py",
    "FILES TO MODIFY": "(none)",
    "DO NOT MODIFY": "- anything else",
    "IMPLEMENTATION REQUIREMENTS": '- `def hello() -> str` returns "hello".',
    "ACCEPTANCE CRITERIA": '- `python -c "from example.hello import hello; print(hello())"` '
    "prints hello",
    "EXECUTION INSTRUCTIONS": "1. Write the file.\n2. Run the acceptance check.\n"
    "3. Commit your work.",
    "IMPORTANT RULES": "- Only touch the files listed above.",
}


def _prompt(spec_id: str, name: str) -> str:
    parts = [
        f"=== {s} ===\n{_SECTION_TEXT[s].format(spec_id=spec_id, name=name)}\n"
        for s in REQUIRED_SECTIONS
    ]
    return "\n".join(parts)


def _readme(spec_id: str, name: str) -> str:
    return f"""# {spec_id} {name}

A cpo parallel directory. Edit `manifest.json` (waves, per-wave validation), add one file
per task in `tasks/` (YAML frontmatter + markdown) and, optionally, a full agent prompt per
task in `prompts/<id>.txt`. Then:

    cpo validate .
    cpo run .

`logs/` and `report.json` are written by `cpo run`.
"""


def init_directory(path: Path, spec_id: str, name: str) -> InitResult:
    """Write the scaffold into `path` (created if needed), keeping every existing file."""
    for label, value in (("--tech-spec-id", spec_id), ("--name", name)):
        why = ref_name_problem(value)
        if why:
            raise UsageError(f"{label} {value!r} cannot be used in a git branch name: {why}")
    if path.exists() and not path.is_dir():
        raise UsageError(f"{path}: exists and is not a directory")
    files = {
        "manifest.json": _manifest(spec_id, name),
        "tasks/task-001-example.md": _TASK,
        "prompts/task-001.txt": _prompt(spec_id, name),
        "README.md": _readme(spec_id, name),
    }
    created, kept = [], []
    try:
        for rel, text in files.items():
            target = path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with target.open("x", encoding="utf-8") as fh:  # "x": never overwrite
                    fh.write(text)
            except FileExistsError:
                kept.append(target)
                continue
            created.append(target)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write: {exc.strerror or exc}") from exc
    return InitResult(path, tuple(created), tuple(kept))


def init_plan_file(path: Path) -> InitResult:
    """Write the sample plan file at `path` (a `.md` file), unless it exists."""
    from cpo.planfile.sample import SAMPLE_PLAN

    if path.suffix.lower() != ".md":
        raise UsageError(f"{path}: a plan file is a Markdown file: name it PLAN.md or similar")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as fh:
            fh.write(SAMPLE_PLAN)
    except FileExistsError:
        return InitResult(path, (), (path,))
    except OSError as exc:
        raise UsageError(f"{path}: cannot write: {exc.strerror or exc}") from exc
    return InitResult(path, (path,), ())
