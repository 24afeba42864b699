"""The HTTP server: a Cohere/Jina-compatible ``/v1/rerank`` with dynamic micro-batching, the RAG
pipeline as ``/v1/ask`` and ``/v1/documents``, health endpoints and a web page.

Run it with ``qwen3-rerank serve`` or ``uvicorn --factory qwen3_rag.server:create_app``.
"""

from .app import create_app
from .batcher import MicroBatcher, QueueFullError
from .settings import ServerSettings

__all__ = ["MicroBatcher", "QueueFullError", "ServerSettings", "create_app"]
