"""What every route shares: the server's state, reading a JSON body within the limit,
masked JSON responses, and the key check (a plain ASGI middleware, so that it also
guards streams, /openapi.json and unknown paths)."""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from cpo.secrets import Masker
from cpo.serve.errors import ApiError, error_body
from cpo.serve.events import Hubs
from cpo.serve.runs import Catalog
from cpo.serve.security import ServerConfig, key_matches, request_key

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Paths anyone may read: the health check, and the dashboard's own files (they hold no
# data; the dashboard asks for the key and sends it with each API call).
PUBLIC = ("/health", "/", "/favicon.ico")
PUBLIC_PREFIXES = ("/static/",)


@dataclass
class State:
    config: ServerConfig
    catalog: Catalog
    hubs: Hubs = field(default_factory=Hubs)
    masker: Masker = field(init=False)

    def __post_init__(self) -> None:
        # Our own keys count as secrets wherever they came from (env or config file).
        keys = {f"CPO_API_KEY_{i}": k for i, k in enumerate(self.config.api_keys)}
        self.masker = Masker({**os.environ, **keys})


def state(request: Request) -> State:
    st: State = request.app.state.cpo
    return st


def masked(st: State, data: Any, status: int = 200) -> Response:
    """JSON with every secret masked (an agent may echo a key into its output)."""
    text = st.masker.mask(json.dumps(data, ensure_ascii=False))
    return Response(text, status_code=status, media_type="application/json")


async def read_json(request: Request, limit: int) -> Any:
    """The body as JSON: 413 past `limit` bytes (counted as it arrives, whatever the
    Content-Length says), 400 when it is not JSON."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body exceeds size limit ({limit} bytes)", limit=limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"request body exceeds size limit ({limit} bytes)", limit=limit)
    try:
        return json.loads(bytes(body))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from None


class KeyCheck:
    """401 for a request without a valid key, when keys are set (clinvk's two headers)."""

    def __init__(self, app: ASGIApp, keys: tuple[str, ...]) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys or _public(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given = request_key(headers)
        if key_matches(given, self.keys):
            await self.app(scope, receive, send)
            return
        message = "missing API key" if not given else "invalid API key"
        response = JSONResponse(
            error_body(401, message), status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )
        await response(scope, receive, send)


def _public(path: str) -> bool:
    return path in PUBLIC or path.startswith(PUBLIC_PREFIXES)
