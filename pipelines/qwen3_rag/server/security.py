"""Who may use the server: API keys, allowed ``Host`` names, and whether writes are on.

Modelled on what Text Embeddings Inference (``--api-key``) and Cohere users expect: with keys
configured, every API route needs ``Authorization: Bearer <key>`` and a missing or wrong key gets
401 with ``WWW-Authenticate: Bearer``. The liveness/readiness checks, ``/metrics``, the OpenAPI
docs and the web page itself stay open (orchestrators and scrapers carry no key; the page asks
the user for one and sends it with its API calls). Every other path is protected, so a route
added later is closed by default.

The ``Host`` check (Starlette's ``TrustedHostMiddleware``) defeats DNS rebinding: a web page on
``attacker.example`` that rebinds its name to 127.0.0.1 still sends ``Host: attacker.example``.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from .request_id import current_request_id
from .settings import ServerSettings
from .state import ServerState, get_state

OPEN_PATHS = frozenset({"/", "/healthz", "/readyz", "/metrics", "/docs", "/redoc", "/openapi.json"})
OPEN_PREFIXES = ("/static/", "/docs/")
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
WILDCARD_BINDS = {"0.0.0.0", "::", "[::]", ""}

# Documents the scheme in OpenAPI (and so for the fuzzer and /docs); `ApiKeyMiddleware` enforces it.
bearer = HTTPBearer(auto_error=False, description="One of QWEN3_SERVER_API_KEYS, when keys are set.")


def allowed_hosts(settings: ServerSettings) -> list[str]:
    """``settings.allowed_hosts``, or the loopback names plus the address the server binds."""
    if settings.allowed_hosts:
        return list(settings.allowed_hosts)
    hosts = list(LOCAL_HOSTS)
    if settings.host not in WILDCARD_BINDS:
        hosts.append(f"[{settings.host}]" if ":" in settings.host else settings.host)
    return hosts


def is_open(path: str) -> bool:
    """Paths served without a key: health checks, metrics, docs and the page."""
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


class ApiKeyMiddleware:
    """ASGI middleware: with keys configured, API paths need a valid ``Bearer`` key.

    It acts before the body is read or parsed, so a client without a key learns nothing about
    the API (no 422 describing fields) and costs the server nothing.
    """

    def __init__(self, app: ASGIApp, keys: tuple[str, ...]) -> None:
        self.app = app
        self._keys = [key.encode() for key in keys]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._keys or is_open(scope["path"]):
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, token = header.partition(b" ")
        if scheme.lower() == b"bearer" and self._valid(token.strip()):
            await self.app(scope, receive, send)
            return
        error = "invalid_token" if header else "invalid_request"
        response = JSONResponse(
            {
                "detail": "A valid API key is required: send `Authorization: Bearer <key>` "
                "with one of the keys in QWEN3_SERVER_API_KEYS.",
                "request_id": current_request_id(),
            },
            status_code=401,
            headers={"WWW-Authenticate": f'Bearer realm="qwen3-rerank", error="{error}"'},
        )
        await response(scope, receive, send)

    def _valid(self, token: bytes) -> bool:
        # Compare against every key in constant time, so timing tells nothing about any of them.
        matches = [hmac.compare_digest(token, key) for key in self._keys]
        return any(matches)


async def documented_bearer(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """No-op dependency that puts the Bearer scheme into OpenAPI; the middleware checks keys."""


def require_writes(state: Annotated[ServerState, Depends(get_state)]) -> None:
    """FastAPI dependency: 403 unless ``QWEN3_SERVER_ALLOW_WRITES`` is on."""
    if not state.settings.allow_writes:
        raise HTTPException(
            403,
            "Indexing over HTTP is off: start the server with QWEN3_SERVER_ALLOW_WRITES=true "
            "(and API keys, if others can reach it) to add or replace documents.",
        )
