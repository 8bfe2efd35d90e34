"""The FastAPI application: routes, error handlers, the key check and the dashboard.

FastAPI because cpo's models are pydantic already (request bodies are validated by the
same models `cpo parallel` and report.json use) and the OpenAPI document comes for free;
uvicorn serves it, streams included.
"""

from __future__ import annotations

import time
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from cpo import __version__
from cpo.adhoc.taskfile import AdhocFile
from cpo.serve import backends, parallel_api, runs_api
from cpo.serve.common import KeyCheck, State, masked, state
from cpo.serve.errors import ApiError, error_body, validation_error
from cpo.serve.models import Backends, Health, RunRequest
from cpo.serve.runs import Catalog
from cpo.serve.security import ServerConfig

STATIC = files("cpo.serve") / "static"


def create_app(config: ServerConfig) -> FastAPI:
    # No /docs or /redoc: they load their scripts from a CDN.
    app = FastAPI(
        title="cpo",
        version=__version__,
        summary="Claude Parallel Orchestrator: runs, live events, clinvk-compatible parallel",
        docs_url=None,
        redoc_url=None,
    )
    app.state.cpo = State(config, Catalog(config.roots))
    app.state.started = time.monotonic()
    _install_handlers(app)
    app.include_router(runs_api.router)
    app.include_router(parallel_api.router)
    app.add_api_route("/health", health, methods=["GET"], response_model=Health, tags=["server"])
    app.add_api_route(
        "/api/v1/backends", list_backends, methods=["GET"], response_model=Backends, tags=["server"]
    )
    app.add_api_route("/", dashboard, methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    app.add_middleware(KeyCheck, keys=config.api_keys)
    return app


def _uptime(seconds: float) -> str:
    """clinvk's form: `2m31s`, `1h2m3s`."""
    s = int(seconds)
    h, m, sec = s // 3600, s % 3600 // 60, s % 60
    return (f"{h}h" if h else "") + (f"{m}m" if h or m else "") + f"{sec}s"


def health(request: Request) -> Response:
    """No key needed: status, version, uptime and which agent CLIs are installed."""
    st = state(request)
    up = time.monotonic() - request.app.state.started
    found = backends.detect()
    body = Health(
        status="ok" if any(b.available and b.name != "command" for b in found) else "degraded",
        version=__version__,
        uptime=_uptime(up),
        uptime_millis=int(up * 1000),
        # Without a key, only names and availability: paths and versions stay private.
        backends=[b.model_copy(update={"path": None, "version": None}) for b in found],
        roots=[str(r) for r in st.config.roots] if not st.config.api_keys else [],
        auth=bool(st.config.api_keys),
    )
    return masked(st, body.model_dump())


def list_backends(request: Request) -> Response:
    return masked(state(request), Backends(backends=backends.detect()).model_dump())


def dashboard() -> FileResponse:
    return FileResponse(str(STATIC / "index.html"), media_type="text/html")


def _install_handlers(app: FastAPI) -> None:
    async def api_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return _error(exc)

    async def invalid(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return _error(validation_error(list(exc.errors())))

    async def http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return _error(ApiError(exc.status_code, str(exc.detail)))

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)


def _error(exc: ApiError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    body = error_body(exc.status, exc.message, exc.details)
    return JSONResponse(body, status_code=exc.status, headers=headers)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, plus the bodies the POST routes read themselves."""
    if app.openapi_schema is None:
        doc = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        for model in (RunRequest, AdhocFile):
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
        doc["components"]["securitySchemes"] = {
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "bearer": {"type": "http", "scheme": "bearer"},
        }
        doc["security"] = [{"apiKey": []}, {"bearer": []}]
        app.openapi_schema = doc
    return app.openapi_schema
