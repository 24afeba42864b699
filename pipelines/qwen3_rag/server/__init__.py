"""The HTTP server: a Cohere/Jina-compatible ``/v1/rerank`` with dynamic micro-batching, the RAG
pipeline as ``/v1/ask`` and ``/v1/documents``, health endpoints and a web page.

Run it with ``qwen3-rerank serve`` or ``uvicorn --factory qwen3_rag.server:create_app``.

The names below load on first use: the ``qwen3-rerank`` CLI imports ``qwen3_rag.server.cli`` on
every start, and must not pay for FastAPI and the model code (or fail without them) just to list
its commands.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app
    from .queue import MicroBatcher, QueueFullError
    from .settings import ServerSettings

_EXPORTS = {
    "create_app": ".app",
    "MicroBatcher": ".queue",
    "QueueFullError": ".queue",
    "ServerSettings": ".settings",
}

__all__ = ["MicroBatcher", "QueueFullError", "ServerSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
