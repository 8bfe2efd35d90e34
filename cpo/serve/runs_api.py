"""The runs routes: list, start, report, events (SSE), a task's log, cancel, resume."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import ValidationError

from cpo.errors import CpoError
from cpo.run.report import load_report
from cpo.serve import runs
from cpo.serve.common import masked, read_json, state
from cpo.serve.errors import ApiError, validation_error
from cpo.serve.events import sse
from cpo.serve.models import Cancelling, LogTail, RunList, RunRequest, Started
from cpo.serve.security import inside_roots

router = APIRouter(prefix="/api/v1/runs", tags=["runs"])
MAX_TAIL = 5000
TAIL_BYTES = 2 * 1024 * 1024  # enough for MAX_TAIL lines of any sane log


def body_schema(model: type[Any]) -> dict[str, Any]:
    """The OpenAPI request body of a route that reads its body itself (to tell malformed
    JSON, 400, from a wrong field, 422)."""
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


def _links(rid: str) -> dict[str, str]:
    base = f"/api/v1/runs/{rid}"
    return {"self": base, "events": f"{base}/events", "cancel": f"{base}/cancel"}


@router.get("", response_model=RunList, summary="Runs found under the roots")
def list_runs(request: Request) -> Response:
    refs = state(request).catalog.all()
    items = sorted(
        (runs.summary(r) for r in refs.values()),
        key=lambda s: s.get("started_at") or "",
        reverse=True,
    )
    return masked(state(request), {"runs": items, "total": len(items)})


@router.post(
    "",
    status_code=202,
    response_model=Started,
    summary="Start `cpo run` on a parallel directory",
    openapi_extra=body_schema(RunRequest),
)
async def start_run(request: Request) -> Response:
    st = state(request)
    raw = await read_json(request, st.config.max_body_bytes)
    try:
        req = RunRequest.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc.errors()) from None
    path, root = _allowed_dir(req.dir, st.config.roots)
    pid = await asyncio.to_thread(runs.start, path, req.argv(), os.environ)
    ref = st.catalog.add(path, root)
    started = Started(id=ref.id, dir=str(path), pid=pid, links=_links(ref.id))
    return masked(st, started.model_dump(), status=202)


def _allowed_dir(given: str, roots: tuple[Path, ...]) -> tuple[Path, Path]:
    """The parallel directory (a relative path is looked up in each root in turn), if it
    lies inside a root once symlinks are followed; else 403. Not a directory: 422."""
    for root in roots:
        path = inside_roots(given, roots, base=root)
        if path is None:
            continue
        if path.is_dir():
            owner = next(r for r in roots if path == r or path.is_relative_to(r))
            if not (path / "manifest.json").is_file():
                raise ApiError(
                    422,
                    f"{given}: no manifest.json here",
                    field="dir",
                    reason="not a parallel directory",
                )
            return path, owner
    if any(inside_roots(given, roots, base=r) is not None for r in roots):
        raise ApiError(422, f"{given}: not a directory", field="dir", reason="not a directory")
    raise ApiError(403, f"{given}: outside the server's roots", field="dir")


@router.get("/{run_id}", summary="The run's report and live state (`cpo status --json`)")
def get_run(request: Request, run_id: str) -> Response:
    st = state(request)
    return masked(st, runs.detail(st.catalog.get(run_id)))


@router.get(
    "/{run_id}/events",
    summary="Server-Sent Events: a snapshot, then progress, task, wave and run events",
    response_class=StreamingResponse,
)
async def run_events(request: Request, run_id: str) -> StreamingResponse:
    st = state(request)
    hub = st.hubs.get(st.catalog.get(run_id))
    last = request.headers.get("last-event-id", "")
    last_id = int(last) if last.isdigit() else None

    async def stream() -> AsyncIterator[str]:
        async for event in hub.listen(last_id):
            yield st.masker.mask(sse(event))

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


@router.get("/{run_id}/tasks/{task}/log", response_model=LogTail, summary="A task's log tail")
def task_log(
    request: Request,
    run_id: str,
    task: str,
    tail: int = Query(default=200, ge=1, le=MAX_TAIL, description="Lines from the end"),
) -> Response:
    st = state(request)
    ref = st.catalog.get(run_id)
    try:
        report = load_report(ref.parallel_dir)
    except CpoError as exc:
        raise ApiError(404, f"run {run_id}: {exc.message}", id=run_id) from None
    rec = report.tasks.get(task) if report is not None else None
    if rec is None:
        raise ApiError(404, f"run {run_id} has no task {task!r}", task=task)
    # The log is the run's own, in its logs/ folder (a report could name any file).
    logs = ref.parallel_dir / "logs"
    path = inside_roots(rec.log or logs / f"{task}.log", [logs.resolve()], base=ref.parallel_dir)
    if path is None:
        raise ApiError(403, f"task {task}: its log is outside the run's logs folder", task=task)
    size, text = _read_end(path)
    lines = text.splitlines()[-tail:]
    body = LogTail(id=run_id, task=task, path=str(path), lines=lines, size=size)
    return masked(st, body.model_dump())


def _read_end(path: Path) -> tuple[int, str]:
    """The file's size and its last TAIL_BYTES as text ("" before the task starts)."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - TAIL_BYTES))
            return size, fh.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return 0, ""


@router.post("/{run_id}/cancel", status_code=202, response_model=Cancelling, summary="Ctrl-C")
def cancel_run(request: Request, run_id: str) -> Response:
    st = state(request)
    ref = st.catalog.get(run_id)
    pid = runs.cancel(ref.parallel_dir)
    return masked(st, Cancelling(id=run_id, pid=pid).model_dump(), status=202)


@router.post(
    "/{run_id}/resume",
    status_code=202,
    response_model=Started,
    summary="`cpo run --resume` on a stopped, interrupted or failed run",
)
async def resume_run(request: Request, run_id: str) -> Response:
    st = state(request)
    ref = st.catalog.get(run_id)
    pid = await asyncio.to_thread(runs.start, ref.parallel_dir, ["--resume"], os.environ)
    started = Started(id=ref.id, dir=str(ref.parallel_dir), pid=pid, links=_links(ref.id))
    return masked(st, started.model_dump(), status=202)
