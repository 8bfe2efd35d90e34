"""Building runnable specs inside real repositories, and running `cpo` as a real process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from cpo.run.report import load_report
from tests.conftest import git


def make_spec(
    repo: Path,
    waves: list[dict[str, str]],
    *,
    deps: dict[str, list[str]] | None = None,
    validation: dict[int, Any] | None = None,
    spec_id: str = "TS-0042",
    name: str = "spec",
    extra: dict[str, Any] | None = None,
    commit: bool = True,
    estimates: dict[str, str] | None = None,
) -> Path:
    """A cpo-style parallel dir at repo/parallel/<spec_id>, committed.

    `waves`: one dict per wave, task id -> prompt text (with @script directives).
    """
    root = repo / "parallel" / spec_id
    (root / "tasks").mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"tech_spec_id": spec_id, "name": name, "waves": []}
    for number, tasks in enumerate(waves, start=1):
        wave: dict[str, Any] = {"number": number, "tasks": [{"id": t} for t in tasks]}
        if validation and number in validation:
            wave["validation"] = validation[number]
        manifest["waves"].append(wave)
        for tid, prompt in tasks.items():
            meta = {"id": tid, "wave": number, "deps": (deps or {}).get(tid, [])}
            if estimates and tid in estimates:
                meta["estimate"] = estimates[tid]
            body = f"# {tid}\n\n## Requirements\n{prompt}\n"
            (root / "tasks" / f"{tid}.md").write_text(
                "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n" + body
            )
    manifest.update(extra or {})
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if commit:
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"spec {spec_id}")
    return root


def cpo(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m cpo ...` as a real process (stdout is a pipe: plain progress lines)."""
    return subprocess.run(
        [sys.executable, "-m", "cpo", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def report(root: Path) -> dict[str, Any]:
    """The report as `cpo status` and --resume read it: report.json with its journal."""
    found = load_report(root)
    if found is None:  # as reading the file would (callers polling for it catch this)
        raise FileNotFoundError(root / "report.json")
    return found.model_dump(mode="json")


def repo_state(repo: Path) -> dict[str, str]:
    """What a run must not change: HEAD, the base branch, and the working tree status."""
    return {
        "head": git(repo, "rev-parse", "HEAD"),
        "branch": git(repo, "symbolic-ref", "HEAD"),
        "main": git(repo, "rev-parse", "refs/heads/main"),
        "status": git(
            repo, "status", "--porcelain", "--untracked-files=all", "--", ".", ":(exclude)parallel"
        ),
    }


def agent_prompts(home: Path, worktree: str, session: str) -> list[str]:
    """Every prompt a scripted claude session got, oldest first, read from where the real
    CLI keeps a session (cpo.scripted.sessions): what the agent received, as it got it."""
    slug = re.sub(r"[^A-Za-z0-9]", "-", worktree)
    path = home / ".claude" / "projects" / slug / f"{session}.jsonl"
    lines = path.read_text().splitlines()
    return [str(json.loads(line)["message"]["content"]) for line in lines]
