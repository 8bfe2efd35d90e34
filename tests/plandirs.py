"""Writing parallel directories for tests: real files in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml


def task_md(meta: dict[str, Any], body: str = "# Task\n\nDo the thing.\n") -> str:
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n" + body


def write_dir(
    root: Path,
    manifest: dict[str, Any] | str | None = None,
    tasks: dict[str, dict[str, Any] | str] | None = None,
    prompts: dict[str, str] | None = None,
) -> Path:
    """A parallel directory: manifest (dict -> JSON, str -> as is), tasks/<name>.md
    (dict -> frontmatter + default body, str -> as is), prompts/<name>."""
    root.mkdir(parents=True, exist_ok=True)
    if manifest is not None:
        text = manifest if isinstance(manifest, str) else json.dumps(manifest, indent=2)
        (root / "manifest.json").write_text(text, encoding="utf-8")
    for name, content in (tasks or {}).items():
        path = root / "tasks" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else task_md(content), "utf-8")
    for name, text in (prompts or {}).items():
        path = root / "prompts" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def cpo_manifest(*waves: list[Any], **extra: Any) -> dict[str, Any]:
    """A cpo-style manifest with the given waves (each a list of task entries or ids)."""
    out: dict[str, Any] = {"tech_spec_id": "TS-0001", "name": "demo"}
    out["waves"] = [{"number": i + 1, "tasks": list(w)} for i, w in enumerate(waves)]
    out.update(extra)
    return out
