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
