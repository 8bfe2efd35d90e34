"""Error bodies in clinvk's shape.

clinvk answers ``{"error": code, "code": code, "message": text, "details": {...}}``
(its `internal/server/errors.go`; the 401 and 413 bodies carry `error` and `message`),
with a validation error's field in `details.field`. cpo adds `details.reason`, and
`details.errors` when several fields are wrong. FastAPI-free: `runs` raises `ApiError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# HTTP status -> clinvk's code for it (where clinvk has one).
CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_too_large",
    422: "validation_error",
    500: "internal_error",
    503: "backend_unavailable",
}


class ApiError(Exception):
    """An expected failure of a request: its HTTP status, message and details."""

    def __init__(self, status: int, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


def error_body(status: int, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    code = CODES.get(status, "error")
    body: dict[str, Any] = {"error": code, "code": code, "message": message}
    if details:
        body["details"] = details
    return body


def field_path(loc: Sequence[int | str]) -> str:
    """`tasks[0].prompt` from pydantic's location (its `body`/`query`/`path` dropped)."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)
    return text.lstrip(".") or "body"


def validation_error(errors: Sequence[Any]) -> ApiError:
    """422 from pydantic's errors: each wrong field with its reason; the first one also as
    `details.field` and `details.reason` (clinvk's single-field shape)."""
    items = [
        {
            "field": field_path(e.get("loc", ())),
            "reason": str(e.get("msg", "")).removeprefix("Value error, "),
        }
        for e in errors
    ]
    first = items[0] if items else {"field": "body", "reason": "invalid"}
    message = "; ".join(f"{i['field']}: {i['reason']}" for i in items) or "invalid request"
    details: dict[str, Any] = dict(first)
    if len(items) > 1:
        details["errors"] = items
    return ApiError(422, message, **details)
