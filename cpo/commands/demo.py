"""`cpo demo`: a complete two-wave run in a throwaway repository, no account needed.

The agent is cpo's scripted stand-in for the `claude` CLI (cpo.scripted.agent), put first
on PATH, so the demo goes through exactly the code a real run uses: the claude backend,
stream-json parsing, worktrees, merges, validations and the report.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from cpo.run.progress import Progress
from cpo.run.report import Report

SPEC_ID = "TS-DEMO"

_OPS = (
    '"""Arithmetic for the calculator."""\\n\\n\\ndef add(a: float, b: float) -> float:\\n'
    "    return a + b\\n\\n\\ndef mul(a: float, b: float) -> float:\\n    return a * b\\n"
)
_FMT = (
    '"""Formatting of results."""\\n\\n\\ndef show(name: str, value: float) -> str:\\n'
    '    return f"{name} = {value:g}"\\n'
)
_CLI = (
    '"""Command line: python -m calc.cli A B."""\\n\\nimport sys\\n\\n'
    "from calc.fmt import show\\nfrom calc.ops import add, mul\\n\\n\\n"
    "def main() -> None:\\n    a, b = (float(x) for x in sys.argv[1:3])\\n"
    '    print(show("sum", add(a, b)))\\n    print(show("product", mul(a, b)))\\n\\n\\n'
    'if __name__ == "__main__":\\n    main()\\n'
)

TASKS = {
    "task-001-ops": (
        1,
        [],
        "Create calc/ops.py with add(a, b) and mul(a, b).",
        f"@script sleep 1\n@script write calc/ops.py {_OPS}\n@script sleep 1\n"
        "@script commit Add calc.ops: add and mul\n@script marker",
    ),
    "task-002-fmt": (
        1,
        [],
        "Create calc/fmt.py with show(name, value) formatting a result line.",
        f"@script sleep 1.5\n@script write calc/fmt.py {_FMT}\n"
        "@script commit Add calc.fmt: result formatting\n@script marker",
    ),
    "task-003-cli": (
        2,
        ["task-001-ops", "task-002-fmt"],
        "Create calc/cli.py using calc.ops and calc.fmt (both merged in wave 1).",
        "@script require calc/ops.py\n@script require calc/fmt.py\n@script sleep 1\n"
        f"@script write calc/cli.py {_CLI}\n@script commit Add calc.cli\n@script marker",
    ),
}


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def build_demo(base: Path) -> Path:
    """Create the repository and the parallel directory under `base`; return the latter."""
    repo = base / "repo"
    (repo / "calc").mkdir(parents=True)
    (repo / "calc" / "__init__.py").write_text('"""A tiny calculator, built by agents."""\n')
    (repo / "README.md").write_text("# calc\n\nA throwaway repository made by `cpo demo`.\n")
    root = repo / "parallel" / SPEC_ID
    (root / "tasks").mkdir(parents=True)
    (root / "prompts").mkdir()
    waves: dict[int, list[dict[str, str]]] = {}
    for tid, (wave, deps, summary, script) in TASKS.items():
        waves.setdefault(wave, []).append({"id": tid})
        (root / "tasks" / f"{tid}.md").write_text(
            f"---\nid: {tid}\nwave: {wave}\ndeps: {json.dumps(deps)}\n---\n"
            f"# {tid}\n\n## Requirements\n{summary}\n"
        )
        # The scripted agent reads its steps from the prompt; a real agent would get prose.
        (root / "prompts" / f"{tid}.txt").write_text(f"{summary}\n\n{script}\n")
    manifest = {
        "tech_spec_id": SPEC_ID,
        "name": "calculator",
        "technology": "python",
        "waves": [
            {
                "number": 1,
                "tasks": waves[1],
                "validation": "from calc.ops import add, mul; from calc.fmt import show; "
                "assert add(2, 3) == 5 and mul(2, 3) == 6; print('Wave 1 OK')",
            },
            {
                "number": 2,
                "tasks": waves[2],
                "validation": {"python": "import calc.cli; print('Wave 2 OK')"},
            },
        ],
        "metadata": {"max_parallel": 2},
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    _git(repo, "init", "-q", "-b", "main")
    # The throwaway repository carries its own identity: the demo must work on a machine
    # where git has none, and it never commits anywhere else.
    _git(repo, "config", "user.name", "cpo demo")
    _git(repo, "config", "user.email", "demo@cpo.invalid")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "calc: empty package and a decomposed feature")
    return root


def demo_env(base: Path) -> dict[str, str]:
    """Environment changes for the demo: the scripted claude first on PATH."""
    from cpo.scripted.agent import install_shim

    bin_dir = base / "bin"
    install_shim(bin_dir)
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        # The scripted agent runs only in the throwaway worktrees: the sandbox flag the
        # real CLI wants before it bypasses permissions as root is true here.
        "IS_SANDBOX": "1",
        "CPO_FAKE_STATE": str(base / "agent-state"),
    }
    env.pop("CPO_CLAUDE_BIN", None)
    return env


def run_demo(
    base: Path | None,
    make_progress: Callable[[Callable[[], Report]], Progress],
) -> tuple[Path, int, Report]:
    """Build and run the demo; returns (parallel dir, exit code, report)."""
    from cpo.run.engine import execute
    from cpo.run.options import RunOptions

    base = Path(tempfile.mkdtemp(prefix="cpo-demo-")) if base is None else base.resolve()
    base.mkdir(parents=True, exist_ok=True)
    if any(base.iterdir()):
        from cpo.errors import UsageError

        raise UsageError(f"{base} is not empty", hint="give `cpo demo --dir` a new folder")
    root = build_demo(base)
    saved = dict(os.environ)
    os.environ.update(demo_env(base))
    os.environ.pop("CPO_CLAUDE_BIN", None)
    try:
        result = execute(root, RunOptions(backend="claude"), make_progress)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return root, int(result.exit_code), result.report


def where_to_look(root: Path, report: Report) -> list[str]:
    repo = root.parent.parent
    return [
        f"repository:   {repo}",
        f"report:       {root / 'report.json'}",
        f"agent logs:   {root / 'logs'}/<task>.log (raw events in <task>.jsonl)",
        f"what merged:  git -C {repo} log --oneline --graph {report.integration_branch}",
        f"status again: cpo status {root}",
        f"try it:       git -C {report.integration_worktree} show HEAD --stat; "
        f"cd {report.integration_worktree} && python3 -m calc.cli 2 3",
    ]
