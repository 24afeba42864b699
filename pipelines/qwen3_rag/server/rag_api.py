"""``POST /v1/ask`` and ``POST /v1/documents``: the RAG pipeline over HTTP.

The pipeline (`qwen3_rag.service.RagService`) is synchronous: Elasticsearch calls, embedding,
reranking and generation all block, so each call runs on the endpoint's own bounded pool
(`offload.BoundedPool`: 429 when full, 504 past its deadline) and the event loop keeps serving
``/v1/rerank`` and ``/readyz`` meanwhile.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException

from qwen3_rag.records import SourceText
from qwen3_rag.stores.base import StoreError

from .batcher import QueueFullError
from .offload import BoundedPool
from .schemas import AskRequest, AskResponse, DocumentsRequest, DocumentsResponse, PassageOut, invalid
from .security import require_writes
from .state import ServerState, get_state

router = APIRouter(tags=["rag"])

try:  # the Elasticsearch client's transport errors are not Python's ConnectionError
    from elastic_transport import ConnectionError as StoreConnectionError
    from elastic_transport import ConnectionTimeout as StoreTimeout

    UNREACHABLE: tuple[type[Exception], ...] = (
        ConnectionError,
        TimeoutError,
        StoreConnectionError,
        StoreTimeout,
    )
except ImportError:  # pragma: no cover - the memory backend needs no Elasticsearch client
    UNREACHABLE = (ConnectionError, TimeoutError)

UNAVAILABLE = {
    429: {"description": "As many pipeline calls as allowed are running; retry after `Retry-After`."},
    503: {"description": "The RAG pipeline is disabled, not started, or its store is unreachable."},
    504: {"description": "The pipeline call passed its deadline (QWEN3_SERVER_PIPELINE_TIMEOUT_S)."},
}


@router.post(
    "/v1/ask", response_model=AskResponse, summary="Answer a question with sources", responses=UNAVAILABLE
)
async def ask(body: AskRequest, state: Annotated[ServerState, Depends(get_state)]) -> AskResponse:
    """Retrieves (BM25 + dense, fused), reranks with the served Qwen3-Reranker, and answers
    citing passages as [1], [2], ...; ``passages[n - 1]`` is the passage cited as [n]."""
    rag = state.require_rag()
    if not body.question.strip():
        invalid(("question",), "question must contain non-whitespace text")
    answer = await _call(
        state.ask_pool,
        rag.ask,
        body.question,
        candidates=body.candidates,
        top_n=body.top_n,
        retry_after=state.settings.retry_after_seconds,
    )
    return AskResponse(
        answer=answer.answer,
        passages=[
            PassageOut(rank=p.rank, id=p.id, text=p.text, source=p.source, score=p.score)
            for p in answer.passages
        ],
        timings=dict(answer.timings),
    )


@router.post(
    "/v1/documents",
    response_model=DocumentsResponse,
    summary="Index documents",
    responses={**UNAVAILABLE, 403: {"description": "Writes are off (QWEN3_SERVER_ALLOW_WRITES)."}},
    dependencies=[Depends(require_writes)],
)
async def add_documents(
    body: DocumentsRequest, state: Annotated[ServerState, Depends(get_state)]
) -> DocumentsResponse:
    """Chunks, embeds and indexes the documents; indexing the same text and source twice
    replaces it rather than duplicating it."""
    rag = state.require_rag()
    sources = [SourceText(text=d.text, source=d.source, meta=dict(d.meta)) for d in body.documents]
    report = await _call(state.documents_pool, rag.index_documents, sources)
    count = await _call(state.documents_pool, rag.document_count)
    return DocumentsResponse(indexed=_as_dict(report), document_count=count)


async def _call(pool: BoundedPool, function: Any, *args: Any, retry_after: int = 1, **kwargs: Any) -> Any:
    """Run a blocking pipeline call on ``pool``; a store that is down becomes a 503, a full model
    queue (shared with /v1/rerank) a 429."""
    try:
        return await pool.run(function, *args, **kwargs)
    except QueueFullError as error:
        retry = str(retry_after)
        raise HTTPException(429, f"{error} Retry in {retry} s.", headers={"Retry-After": retry}) from error
    except ValueError as error:
        raise HTTPException(422, str(error)) from error
    except (*UNREACHABLE, StoreError) as error:
        raise HTTPException(503, f"The document store cannot serve: {error}") from error


def _as_dict(report: Any) -> dict[str, Any]:
    return dataclasses.asdict(report) if dataclasses.is_dataclass(report) else dict(report)
