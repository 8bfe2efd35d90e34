"""POST /api/v1/parallel: `cpo parallel` over HTTP, synchronous like clinvk's.

The body is the task file `cpo parallel` reads; the answer is what `cpo parallel --json`
prints. Every task's `workdir` and the `output_dir` must lie inside a root (a relative
one is taken from the first root). A client that disconnects stops its agents.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from cpo.adhoc.run import AdhocFile, AdhocOptions, TaskFileError, run_adhoc
from cpo.config import load_settings
from cpo.errors import CpoError, PreflightError
from cpo.proc import ProcessRegistry
from cpo.serve.common import masked, read_json, state
from cpo.serve.errors import ApiError, validation_error
from cpo.serve.runs import child_env
from cpo.serve.runs_api import body_schema
from cpo.serve.security import inside_roots

router = APIRouter(tags=["parallel"])
DISCONNECT_POLL = 0.25


@router.post(
    "/api/v1/parallel",
    summary="Run ad-hoc prompts at once (clinvk's task file); answers when all are done",
    openapi_extra=body_schema(AdhocFile),
)
async def parallel(request: Request) -> Response:
    st = state(request)
    raw = await read_json(request, st.config.max_body_bytes)
    doc = {"tasks": raw} if isinstance(raw, list) else raw
    try:
        parsed = AdhocFile.model_validate(doc)
    except ValidationError as exc:
        raise validation_error(exc.errors()) from None
    base = st.config.roots[0]
    _check_paths(parsed, st.config.roots, base)
    registry = ProcessRegistry()
    work = asyncio.ensure_future(asyncio.to_thread(_run, json.dumps(doc), base, registry))
    while not work.done():
        await asyncio.wait({work}, timeout=DISCONNECT_POLL)
        if not work.done() and await request.is_disconnected():
            registry.terminate_all()  # nobody will read the answer: stop the agents
            break
    summary = await work
    return masked(st, summary)


def _check_paths(parsed: AdhocFile, roots: tuple[Path, ...], base: Path) -> None:
    for i, task in enumerate(parsed.tasks):
        if inside_roots(task.workdir or ".", roots, base=base) is None:
            raise ApiError(
                403, f"tasks[{i}].workdir: outside the server's roots", field=f"tasks[{i}].workdir"
            )
    if parsed.output_dir and inside_roots(parsed.output_dir, roots, base=base) is None:
        raise ApiError(403, "output_dir: outside the server's roots", field="output_dir")


def _run(text: str, base: Path, registry: ProcessRegistry) -> dict[str, Any]:
    try:
        _plan, summary = run_adhoc(
            text,
            "request",
            options=AdhocOptions(),
            settings=load_settings(None, cwd=base),
            cwd=base,
            env=child_env(os.environ),
            registry=registry,
        )
    except TaskFileError as exc:
        lines = [p.removeprefix("request: ") for p in exc.problems]
        field, _, reason = lines[0].partition(": ")
        raise ApiError(422, "; ".join(lines), field=field, reason=reason) from None
    except PreflightError as exc:
        raise ApiError(503, "; ".join(exc.lines())) from None
    except CpoError as exc:
        raise ApiError(422, "; ".join(exc.lines())) from None
    return summary.to_json()
