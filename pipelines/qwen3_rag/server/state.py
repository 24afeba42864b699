"""What the running server holds: one model, one batcher, and maybe a RAG pipeline.

Routes reach it through `get_state`, a FastAPI dependency, rather than through globals, so a
test can build an app around any reranker or pipeline it likes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Literal, Protocol

from fastapi import HTTPException, Request

from qwen3_rerank import Qwen3Reranker

from .observability import secret_values
from .queue import BoundedPool, MicroBatcher, Probe, RerankScheduler
from .settings import ServerSettings

CorpusStatus = Literal["not configured", "indexing", "indexed", "already indexed", "failed"]


class RagBackend(Protocol):
    """The part of `qwen3_rag.service.RagService` the server calls (tests pass stand-ins)."""

    def index_documents(self, documents: Iterable[Any]) -> Any: ...

    def index_paths(self, paths: Sequence[Path]) -> Any: ...

    def ask(self, question: str, *, candidates: int | None = None, top_n: int | None = None) -> Any: ...

    def document_count(self) -> int: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


@dataclass
class ServerState:
    """Everything a request may need.

    Attributes:
        rag: The pipeline behind ``/v1/ask`` and ``/v1/documents``; ``None`` when disabled or
            when it failed to start (``rag_error`` says why).
        corpus: Progress of indexing the sample corpus at start-up.
        ask_pool, documents_pool: Threads for the blocking pipeline calls of ``/v1/ask`` and
            ``/v1/documents``; their sizes are those endpoints' concurrency limits.
        readiness: The store ping of ``/readyz``, on a thread of its own.
    """

    settings: ServerSettings
    reranker: Qwen3Reranker
    scheduler: RerankScheduler
    rag: RagBackend | None = None
    rag_error: str | None = None
    corpus: CorpusStatus = "not configured"
    corpus_error: str | None = None
    background: set[asyncio.Task[None]] = field(default_factory=set)
    ask_pool: BoundedPool = field(init=False)
    documents_pool: BoundedPool = field(init=False)
    readiness: Probe = field(init=False)
    secrets: list[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        settings = self.settings
        self.secrets = server_secrets(settings)
        timeout_s = settings.pipeline_timeout_s
        self.ask_pool = BoundedPool("ask", workers=settings.ask_concurrency, timeout_s=timeout_s)
        # One indexing call at a time: it embeds every chunk, and a second would only compete.
        self.documents_pool = BoundedPool("documents", workers=1, timeout_s=timeout_s)
        self.readiness = Probe(timeout_s=settings.readiness_timeout_s)

    def close_pools(self) -> None:
        """Release the pipeline threads (those blocked in a call end when it returns)."""
        for pool in (self.ask_pool, self.documents_pool, self.readiness):
            pool.close()

    @property
    def batcher(self) -> MicroBatcher:
        """The one queue in front of the model (its stats and queue depth)."""
        return self.scheduler.batcher

    def served_model_names(self) -> list[str]:
        """Names a request's ``model`` may use, the name responses carry first: the aliases of
        ``QWEN3_SERVER_SERVED_MODEL_NAMES``, the id's last path part, the id it was loaded with."""
        model_id = self.reranker.model_id
        names = [*self.settings.served_model_names, model_id.rstrip("/").rsplit("/", 1)[-1], model_id]
        return list(dict.fromkeys(names))

    def public_model_names(self) -> list[str]:
        """`served_model_names` without a local path (a model loaded from a folder): the names a
        response may list, since no response shows where the server keeps its files."""
        return [name for name in self.served_model_names() if not _is_local_path(name)]

    def require_rag(self) -> RagBackend:
        """The pipeline, or a 503 saying why ``/v1/ask`` cannot answer."""
        if self.rag is None:
            raise HTTPException(
                503,
                f"The RAG pipeline is not available: {self.rag_error or 'disabled (QWEN3_SERVER_RAG=off)'}.",
            )
        return self.rag


def _is_local_path(name: str) -> bool:
    """A path of this machine: absolute (POSIX, or Windows with a drive), or from home or here."""
    return (
        PurePosixPath(name).is_absolute()
        or bool(PureWindowsPath(name).drive)
        or name.startswith(("~", "./", "../", ".\\", "..\\"))
    )


def server_secrets(settings: ServerSettings) -> list[str]:
    """What `redact` masks: secret-named environment variables and the server's API keys."""
    return secret_values(extra=[key.get_secret_value() for key in settings.api_keys])


def get_state(request: Request) -> ServerState:
    """FastAPI dependency: the state the lifespan stored on the app."""
    state = getattr(request.app.state, "qwen3", None)
    if state is None:
        raise HTTPException(503, "The server is still starting.")
    return state
