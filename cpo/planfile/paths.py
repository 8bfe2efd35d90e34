"""Plan files by their paths: which path is a plan file, and where its run writes.

Apart from the rest of cpo.planfile so that a spec's run, and every command that only asks
"is this a plan file?", does not import the plan-file parser.
"""

from __future__ import annotations

from pathlib import Path


def is_plan_file(path: Path) -> bool:
    """Whether `path` names a plan file (a Markdown file) rather than a parallel directory."""
    return path.suffix.lower() in (".md", ".markdown") and not path.is_dir()


def output_dir(plan_file: Path) -> Path:
    """Where a plan file's run writes report.json and logs: `<stem>.cpo` next to it."""
    return plan_file.parent / f"{plan_file.stem}.cpo"


def plan_file_of(folder: Path) -> Path | None:
    """The plan file whose run writes into `folder` (`PLAN.cpo` -> `PLAN.md`), if any."""
    if folder.suffix != ".cpo" or (folder / "manifest.json").exists():
        return None
    for suffix in (".md", ".markdown"):
        candidate = folder.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None
