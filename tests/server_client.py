"""A `TestClient` that talks to the server as ``http://localhost``.

Starlette's test client sends ``Host: testserver``, a name the server's allowed-hosts check
refuses, as it refuses every name it does not serve (DNS rebinding). Tests address the app by a
name it accepts by default instead of widening the check.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

LOCAL_URL = "http://localhost"


class LocalTestClient(TestClient):
    """`TestClient` with ``base_url="http://localhost"`` unless given another."""

    def __init__(self, app: Any, **kwargs: Any) -> None:
        kwargs.setdefault("base_url", LOCAL_URL)
        super().__init__(app, **kwargs)


def post_scope(path: str, body: bytes | None = None) -> dict[str, Any]:
    """The ASGI scope of a JSON ``POST`` to ``path`` on ``localhost``, for tests that drive the app
    message by message (a body that stalls, a client that leaves)."""
    headers = [(b"host", b"localhost"), (b"content-type", b"application/json")]
    if body is not None:
        headers.append((b"content-length", str(len(body)).encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1234),
        "server": ("localhost", 80),
        "state": {},
    }
