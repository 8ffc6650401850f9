"""API errors: one JSON shape `{"error": {"code", "message", "details"}}` for every failure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger(__name__)


class AppError(Exception):
    """A failure the client can understand and act on."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: Any = None, code: str | None = None,
                 status: int | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers
        if code:
            self.code = code
        if status:
            self.status = status


class NotFound(AppError):
    status, code = 404, "not_found"


class Forbidden(AppError):
    status, code = 403, "forbidden"


class Unauthorized(AppError):
    status, code = 401, "unauthorized"


class Conflict(AppError):
    status, code = 409, "conflict"


class Unprocessable(AppError):
    status, code = 422, "unprocessable"


class TooManyRequests(AppError):
    status, code = 429, "rate_limited"


class ServiceUnavailable(AppError):
    status, code = 503, "unavailable"


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


_STATUS_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
    422: "unprocessable", 429: "rate_limited", 503: "unavailable",
}


def _jsonable_errors(errors: list[Any]) -> list[dict[str, Any]]:
    out = []
    for e in errors:
        out.append({"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")),
                    "type": str(e.get("type", ""))})
    return out


# Paths that machines read: they keep the JSON error shape whatever the Accept header says.
MACHINE_PREFIXES = ("/api/", "/metrics", "/livez", "/readyz", "/healthz", "/openapi.json", "/static/")

PageRenderer = Callable[[Request, int, str | None], Response]
"""Renders a person-facing error page: (request, status, message or None for the status's own words)."""


def wants_page(req: Request) -> bool:
    """A person's URL (not /api/v1 nor a probe) is answered with a page, never JSON."""
    path = req.url.path
    return not any(path == p.rstrip("/") or path.startswith(p) for p in MACHINE_PREFIXES)


def install_error_handlers(app: FastAPI, *, page: PageRenderer | None = None) -> None:
    """JSON errors for the API; with `page`, the same failures on a person's URL render a designed page."""

    def as_page(req: Request, status: int, message: str | None) -> Response | None:
        return page(req, status, message) if page is not None and wants_page(req) else None

    @app.exception_handler(AppError)
    async def _app_error(req: Request, exc: AppError) -> Response:
        if (resp := as_page(req, exc.status, exc.message)) is not None:
            return resp
        return JSONResponse(error_body(exc.code, exc.message, exc.details), status_code=exc.status,
                            headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(req: Request, exc: RequestValidationError) -> Response:
        errors = list(exc.errors())
        # A malformed path segment (/orders/abc) names no page that exists: not found, for a person.
        in_path = any(tuple(e.get("loc", ()))[:1] == ("path",) for e in errors)
        if (resp := as_page(req, 404 if in_path else 422, None)) is not None:
            return resp
        return JSONResponse(
            error_body("validation_error", "The request is not valid; see details.", _jsonable_errors(errors)),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(req: Request, exc: StarletteHTTPException) -> Response:
        if (resp := as_page(req, exc.status_code, None)) is not None:
            if exc.headers:
                resp.headers.update(exc.headers)
            return resp
        code = _STATUS_CODES.get(exc.status_code, "error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(req: Request, exc: Exception) -> Response:
        log.exception("unhandled_error", path=req.url.path)
        if (resp := as_page(req, 500, None)) is not None:
            return resp
        return JSONResponse(error_body("internal_error", "Something went wrong on our side; it was logged."),
                            status_code=500)
