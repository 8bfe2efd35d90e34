"""A backend run against its fake CLI (tests/fakes/), as the run engine streams an agent:
the request, then argv, env and the prompt on stdin through `cpo.proc.run_streaming`, each
output line fed to the backend's parser as it arrives (tests/test_agents_codex.py,
tests/test_agents_gemini.py)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from cpo.agents.base import AgentOutcome, AgentRequest, Backend
from cpo.proc import ProcResult, run_streaming


def request(repo: Path, prompt: str, **kw: object) -> AgentRequest:
    return AgentRequest(
        task_id="t1",
        wave=1,
        prompt=prompt,
        worktree=repo,
        parallel_dir=repo,
        **kw,  # type: ignore[arg-type]
    )


def run_backend(
    backend: Backend, req: AgentRequest, env: Mapping[str, str] | None = None
) -> tuple[ProcResult, AgentOutcome, list[str]]:
    """The process, the parser's outcome, and the log lines; `env`: the base environment
    the backend's own is built on (default: this process's)."""
    parser = backend.parser()
    logs: list[str] = []

    def out(line: str) -> None:
        logs.extend(e.log for e in parser.feed(line) if e.log)

    proc = run_streaming(
        backend.argv(req),
        cwd=req.worktree,
        env=backend.env(req, os.environ if env is None else env),
        stdin_text=req.prompt,
        on_stdout=out,
        timeout=60,
    )
    return proc, parser.finish(proc.returncode, proc.stderr_tail), logs
