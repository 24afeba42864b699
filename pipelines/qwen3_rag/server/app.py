"""The FastAPI application: one model loaded at start-up, shared by every endpoint.

Example:
    >>> from qwen3_rag.server import ServerSettings, create_app
    >>> app = create_app(ServerSettings.from_env(device="cpu"))
    >>> # uvicorn.run(app, host="127.0.0.1", port=8000)

The reranker is loaded in the lifespan, not at import, so building the app is cheap and tests can
hand in a tiny model. The RAG service receives the very same `Qwen3Reranker`, so ``/v1/ask``
and ``/v1/rerank`` share one copy of the weights. On a fresh stack's first start the sample corpus
is indexed in the background when the store is empty (`index_sample_corpus`), so ``docker compose
up`` ends in a page that answers, and a restart re-embeds nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import Depends, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from qwen3_rerank import Qwen3Reranker, __version__

from .edge import REQUEST_ID_HEADER, RequestGate, StrictFraming, allowed_hosts, bearer, valid_request_id
from .errors import install_error_handlers
from .handlers import api, probes
from .observability import ServerMetrics, install_log_filter, remove_log_filter
from .queue import RerankScheduler
from .settings import ServerSettings
from .state import RagBackend, ServerState, server_secrets
from .wire import wire

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
# The page holds an API-key field: it runs only its own script, is never framed, and no file
# it loads is sniffed into another type.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'; object-src 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# Elasticsearch reports healthy slightly before an index can be created; a few retries cover it.
CORPUS_ATTEMPTS = 5
CORPUS_RETRY_DELAY_S = 3.0

RagFactory = Callable[[ServerSettings, Qwen3Reranker], RagBackend]


def build_rag_service(settings: ServerSettings, reranker: Qwen3Reranker, **flags: Any) -> RagBackend:
    """The RAG service from ``qwen3_rag.settings``, reranking with the served model: ``flags`` are
    pipeline settings given to ``serve`` (``None`` is unset), over the environment."""
    from qwen3_rag.service import RagService
    from qwen3_rag.settings import RerankerSettings, Settings

    served = reranker.config.to_dict() | {"reranker_model": reranker.model_id}
    reranking = {name: served.get(name) for name in RerankerSettings.model_fields}
    return RagService(Settings.from_env(**(flags | reranking)), reranker=reranker)


def create_app(
    settings: ServerSettings | None = None,
    *,
    reranker: Qwen3Reranker | None = None,
    rag_factory: RagFactory | None = build_rag_service,
) -> FastAPI:
    """The HTTP app.

    Args:
        settings: Server settings; ``None`` reads them from the environment.
        reranker: A reranker to serve instead of loading ``settings.reranker_config()`` (the caller keeps
            ownership and closes it).
        rag_factory: Builds the RAG service behind ``/v1/ask``; ``None`` serves reranking only.
    """
    settings = settings or ServerSettings.from_env()
    secrets = server_secrets(settings)
    metrics = ServerMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        filtered = install_log_filter(secrets)
        try:
            state = await _start(settings, reranker, rag_factory, metrics)
            app.state.qwen3 = state
            metrics.watch(state)
            try:
                yield
            finally:
                metrics.watch(None)
                await _stop(state, close_reranker=reranker is None)
                app.state.qwen3 = None
        finally:
            remove_log_filter(filtered)

    app = FastAPI(
        title="qwen3-rerank",
        version=__version__,
        summary="Qwen3-Reranker scoring (Cohere/Jina /v1/rerank, TEI /rerank, vLLM /v1/score) and a RAG "
        "pipeline with sources.",
        lifespan=lifespan,
    )
    install_error_handlers(app, secrets)
    # The edge, outermost first: request id, framing, metrics, Host check, then `RequestGate`
    # (head size, API key, body size and deadline), so cheap refusals come before any body is
    # read. (Starlette runs the last middleware added first.)
    app.add_middleware(RequestGate, settings=settings)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(settings))
    metrics.instrument(app)
    app.add_middleware(StrictFraming)
    app.add_middleware(
        CorrelationIdMiddleware,
        header_name=REQUEST_ID_HEADER,
        validator=partial(valid_request_id, secrets=secrets),
        update_request_header=False,
    )
    app.include_router(api, dependencies=[Depends(bearer)])  # the scheme in OpenAPI; the gate checks keys
    app.include_router(wire, dependencies=[Depends(bearer)])  # TEI's and vLLM's formats
    app.include_router(probes)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers=PAGE_HEADERS)

    return app


async def _start(
    settings: ServerSettings,
    reranker: Qwen3Reranker | None,
    rag_factory: RagFactory | None,
    metrics: ServerMetrics,
) -> ServerState:
    owns_reranker = reranker is None
    if reranker is None:
        logger.info("Loading %s", settings.reranker_model)
        reranker = await asyncio.to_thread(Qwen3Reranker, config=settings.reranker_config())
    scheduler = await RerankScheduler.start(reranker, settings, metrics.timed(reranker.score_prepared))
    state = ServerState(settings=settings, reranker=reranker, scheduler=scheduler)
    try:
        await _start_rag(state, rag_factory)
    except BaseException:
        await _stop(state, close_reranker=owns_reranker)
        raise
    return state


async def _start_rag(state: ServerState, rag_factory: RagFactory | None) -> None:
    """Build the RAG service; with ``rag="auto"`` a failure leaves reranking alone running."""
    settings = state.settings
    if settings.rag == "off":
        return
    if rag_factory is None:
        state.rag_error = "no pipeline configured"
        return
    try:
        # The pipeline opens its own handles from this one: all of them score through the queue.
        with state.scheduler.queued_reranker() as reranker:
            state.rag = await asyncio.to_thread(rag_factory, settings, reranker)
    except Exception as error:
        if settings.rag == "on":
            raise
        state.rag_error = f"{type(error).__name__}: {error}"
        logger.warning("Serving /v1/rerank only; the RAG pipeline did not start: %s", state.rag_error)
        return
    if settings.sample_corpus is not None:
        # In the background: the API answers (and /readyz reports progress) while it indexes.
        task = asyncio.create_task(index_sample_corpus(state, settings.sample_corpus))
        state.background.add(task)
        task.add_done_callback(state.background.discard)


async def _stop(state: ServerState, *, close_reranker: bool) -> None:
    for task in list(state.background):
        task.cancel()
    await asyncio.gather(*state.background, return_exceptions=True)
    await state.scheduler.stop()
    state.close_pools()
    if state.rag is not None:
        await asyncio.to_thread(state.rag.close)
    if close_reranker:
        state.reranker.close()


async def index_sample_corpus(state: ServerState, folder: Path) -> None:
    """Index ``folder`` (recursively) into the store unless it holds chunks; progress on ``/readyz``."""
    rag = state.rag
    if rag is None:
        return
    state.corpus = "indexing"
    for attempt in range(1, CORPUS_ATTEMPTS + 1):
        try:
            if await asyncio.to_thread(rag.document_count) > 0:
                state.corpus = "already indexed"
                return
            report = await asyncio.to_thread(rag.index_paths, [folder])
        except Exception as error:
            logger.warning(
                "Indexing %s failed (attempt %d of %d): %s", folder, attempt, CORPUS_ATTEMPTS, error
            )
            state.corpus_error = f"{type(error).__name__}: {error}"
            if attempt < CORPUS_ATTEMPTS:
                await asyncio.sleep(CORPUS_RETRY_DELAY_S)
            continue
        logger.info("Indexed the sample corpus %s: %s", folder, report)
        state.corpus, state.corpus_error = "indexed", None
        return
    state.corpus = "failed"
