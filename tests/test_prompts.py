from __future__ import annotations

import os
from pathlib import Path

from cpo.plan.prompts import REQUIRED_SECTIONS, missing_sections, resolve_prompt, section_names


def choose(root: Path, task_id: str, prompt_file: str | None = None, body: str | None = None):  # type: ignore[no-untyped-def]
    names = set(os.listdir(root / "prompts")) if (root / "prompts").is_dir() else set()
    return resolve_prompt(
        root_real=os.path.realpath(root),
        task_id=task_id,
        prompt_file=prompt_file,
        prompt_file_where=("manifest.json", "prompt_file"),
        body=body,
        task_file="tasks/t.md" if body is not None else None,
        prompt_names=names,
    )


def test_resolution_order(tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "own.txt").write_text("own")
    (tmp_path / "prompts" / "task-001-users.txt").write_text("by id")
    (tmp_path / "prompts" / "task-001.txt").write_text("by number")
    assert choose(tmp_path, "task-001-users", "own.txt", "body").text == "own"
    assert choose(tmp_path, "task-001-users", None, "body").source == "prompts/task-001-users.txt"
    (tmp_path / "prompts" / "task-001-users.txt").unlink()
    c = choose(tmp_path, "task-001-users", None, "body")
    assert (c.text, c.source) == ("by number", "prompts/task-001.txt")
    (tmp_path / "prompts" / "task-001.txt").unlink()
    c = choose(tmp_path, "task-001-users", None, "body")
    assert (c.text, c.source) == ("body", "tasks/t.md (body)")


def test_no_prompt_at_all(tmp_path: Path) -> None:
    c = choose(tmp_path, "task-002-x")
    assert c.text is None and c.error is not None
    assert "prompts/task-002-x.txt" in c.error and "prompts/task-002.txt" in c.error


def test_escaping_prompt_file(tmp_path: Path) -> None:
    c = choose(tmp_path, "t", "../x.txt", "body")
    assert c.text is None and "escapes" in (c.error or "")


def test_sections() -> None:
    text = "=== OBJECTIVE ===\nx\n  === Output Format (REQUIRED) ===\n===CONTEXT===\n"
    assert section_names(text) == {"OBJECTIVE", "OUTPUT FORMAT", "CONTEXT"}
    missing = missing_sections(text)
    assert "OBJECTIVE" not in missing and "IMPORTANT RULES" in missing
    assert "COMPLETION SIGNAL" not in REQUIRED_SECTIONS
    assert "OUTPUT FORMAT" not in REQUIRED_SECTIONS
