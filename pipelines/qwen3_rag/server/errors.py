"""Every refusal the server sends, built in one place: bounded, JSON-safe, redacted, with the id.

`error_response` is the one body builder (``{"detail": ..., "request_id": ...}``), used by the
edge, the handlers and the exception handlers alike; `too_busy` is the one 429 with
``Retry-After``; `invalid` is a 422 shaped like FastAPI's own validation errors.

FastAPI's own validation handler echoes each invalid input whole, so a 1.9 MB invalid body came
back as a 4 MB 422, and an input it cannot serialise (``NaN``, a lone surrogate) turned the 422
into a 500. Here each echoed input is cut to a short excerpt, non-finite numbers and lone
surrogates are written as text, at most `MAX_ERRORS` errors are listed, and every message is
passed through `redact` so a store URL with a password never reaches the client.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from typing import Any, NoReturn

from asgi_correlation_id import correlation_id
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from .observability import redact_json

logger = logging.getLogger(__name__)

MAX_ERRORS = 20
MAX_INPUT_CHARS = 200
MAX_DETAIL_CHARS = 2000


def error_response(
    status: int,
    detail: Any,
    headers: dict[str, str] | None = None,
    secrets: Iterable[str] = (),
    **extra: Any,
) -> JSONResponse:
    """The body of every error: ``detail`` (JSON-safe, cut, redacted), ``extra`` fields, the id."""
    body = {"detail": safe_json(detail), **extra}
    body = redact_json(body, list(secrets)) | {"request_id": correlation_id.get()}
    return JSONResponse(body, status_code=status, headers=headers)


def too_busy(reason: str, retry_after_s: int) -> HTTPException:
    """The one 429: ``reason``, and when to come back (``Retry-After``)."""
    retry = str(retry_after_s)
    return HTTPException(429, f"{reason} Retry in {retry} s.", headers={"Retry-After": retry})


def invalid(location: tuple[str | int, ...], message: str) -> NoReturn:
    """A 422 shaped like FastAPI's own validation errors, so clients parse one format."""
    raise HTTPException(422, [{"loc": ["body", *location], "msg": message, "type": "value_error"}])


def install_error_handlers(app: FastAPI, secrets: list[str]) -> None:
    """Replace FastAPI's 422/HTTP/500 handlers; ``secrets`` are masked in every error body."""

    async def validation_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        errors = error.errors()
        extra = {"omitted_errors": len(errors) - MAX_ERRORS} if len(errors) > MAX_ERRORS else {}
        detail = [_bounded_error(item) for item in errors[:MAX_ERRORS]]
        return error_response(422, detail, secrets=secrets, **extra)

    async def http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, HTTPException)
        extra = getattr(error, "extra", None) or {}
        return error_response(error.status_code, error.detail, error.headers, secrets, **extra)

    async def server_error(request: Request, error: Exception) -> JSONResponse:
        logger.exception("Unhandled error while serving %s %s", request.method, request.url.path)
        return error_response(500, "Internal server error; the log has the details.", secrets=secrets)

    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, server_error)


def _bounded_error(error: Any) -> dict[str, Any]:
    """One pydantic error with its ``input`` cut to an excerpt and everything JSON-safe."""
    bounded = {
        "type": error.get("type"),
        "loc": [safe_json(part) for part in error.get("loc", ())],
        "msg": safe_text(str(error.get("msg", ""))),
        "input": excerpt(error.get("input")),
    }
    if error.get("ctx"):
        bounded["ctx"] = {str(key): excerpt(value) for key, value in error["ctx"].items()}
    return bounded


def excerpt(value: Any) -> Any:
    """``value`` if it is small and JSON-safe, else a text excerpt of at most `MAX_INPUT_CHARS`."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return _cut(safe_text(value))
    if isinstance(value, dict | list | tuple):
        text = json.dumps(value, ensure_ascii=False, default=str, allow_nan=True)
        return safe_json(value) if len(text) <= MAX_INPUT_CHARS else _cut(safe_text(text))
    return _cut(safe_text(str(value)))


def safe_json(value: Any, limit: int = MAX_DETAIL_CHARS) -> Any:
    """A copy of ``value`` that `json.dumps` accepts with ``allow_nan=False`` and UTF-8 can encode."""
    if isinstance(value, str):
        return _cut(safe_text(value), limit)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {safe_text(str(key)): safe_json(item, limit) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [safe_json(item, limit) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return _cut(safe_text(str(value)), limit)


def safe_text(text: str) -> str:
    """Lone surrogates (valid in Python and JSON escapes, not in UTF-8) written as ``\\udXXX``."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _cut(text: str, limit: int = MAX_INPUT_CHARS) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"
