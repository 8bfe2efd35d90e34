"""What `cpo parallel` returns: one result per task, the summary, and `output_dir`.

The JSON shapes are clinvk's (`total_tasks`, `completed`, `failed`, `results[]` with
`output` and the same text again as `content`, durations in milliseconds as `*_ms`), so
scripts written for it keep working; `*_seconds` say the same for cpo's own readers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cpo.adhoc.taskfile import AdhocPlan


@dataclass(frozen=True)
class AdhocResult:
    index: int
    task_id: str
    task_name: str
    backend: str
    success: bool
    output: str = ""
    duration_seconds: float = 0.0
    exit_code: int | None = None
    error: str | None = None
    tags: tuple[str, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)
    worktree: str | None = None  # a kept worktree (it holds the agent's changes)
    session_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "task_id": self.task_id,
            "task_name": self.task_name,
            "backend": self.backend,
            "output": self.output,
            "content": self.output,
            "duration_seconds": round(self.duration_seconds, 3),
            "duration_ms": round(self.duration_seconds * 1000),
            "exit_code": self.exit_code,
            "error": self.error,
            "tags": list(self.tags),
            "meta": dict(self.meta),
            "worktree": self.worktree,
        }


@dataclass(frozen=True)
class AdhocSummary:
    results: tuple[AdhocResult, ...]
    duration_seconds: float

    @property
    def completed(self) -> int:
        return sum(1 for r in self.results if r.success)

    @property
    def failed(self) -> int:
        return len(self.results) - self.completed

    def to_json(self) -> dict[str, Any]:
        return {
            "total_tasks": len(self.results),
            "completed": self.completed,
            "failed": self.failed,
            "total_duration_seconds": round(self.duration_seconds, 3),
            "total_duration_ms": round(self.duration_seconds * 1000),
            "results": [r.to_json() for r in self.results],
        }


def write_output_dir(directory: Path, plan: AdhocPlan, summary: AdhocSummary) -> list[Path]:
    """`summary.json` and one `<NN>-<id>.json` per task ({"task": ..., "result": ...})."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for r in summary.results:
        path = directory / f"{r.index + 1:02d}-{safe_name(r.task_id)}.json"
        doc = {"task": plan.raw_tasks[r.index], "result": r.to_json()}
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    summary_path = directory / "summary.json"
    summary_path.write_text(
        json.dumps(summary.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return [summary_path, *written]


def safe_name(text: str) -> str:
    """`text` as a file-name part: runs of anything else than [A-Za-z0-9._-] become `-`."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "task"
