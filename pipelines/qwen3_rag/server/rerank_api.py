"""``POST /v1/rerank``: the Cohere / Jina / vLLM-compatible rerank endpoint."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from qwen3_rerank import InvalidInput

from .batcher import QueueFullError
from .disconnect import ClientDisconnected, cancel_on_disconnect
from .schemas import (
    RerankDocument,
    RerankRequest,
    RerankResponse,
    RerankResultItem,
    RerankUsage,
    invalid,
)
from .state import ServerState, get_state

router = APIRouter(tags=["rerank"])

# nginx's code for "client closed request": logged, never seen by the client that left.
CLIENT_CLOSED_REQUEST = 499
# Where other servers put the same API: Cohere's v2 SDK posts to /v2/rerank, and vLLM serves
# /rerank, /v1/rerank and /v2/rerank alike. Text Embeddings Inference's /rerank takes `texts`
# instead of `documents`; such a client gets a 422 naming the missing `documents` field.
ALIASES = ("/v2/rerank", "/rerank")


def check_request(body: RerankRequest, texts: list[str], state: ServerState) -> None:
    """The model is fixed at start-up; sizes are bounded so one request cannot hog the model."""
    settings = state.settings
    if body.model is not None and body.model not in state.served_model_names():
        invalid(
            ("model",), f"this server serves {state.reranker.model_id!r} only; omit `model` or use that name"
        )
    if not body.query.strip():
        invalid(("query",), "query must contain non-whitespace text")
    if len(texts) > settings.max_documents:
        invalid(("documents",), f"at most {settings.max_documents} documents per request; got {len(texts)}")
    for name, text in (("query", body.query), ("instruction", body.instruction or "")):
        if len(text) > settings.max_document_chars:
            invalid((name,), f"at most {settings.max_document_chars} characters; got {len(text)}")
    for index, text in enumerate(texts):
        if len(text) > settings.max_document_chars:
            invalid(
                ("documents", index),
                f"at most {settings.max_document_chars} characters per document; got {len(text)}",
            )


@router.post(
    "/v1/rerank",
    response_model=RerankResponse,
    response_model_exclude_none=True,
    summary="Rerank documents against a query",
    responses={
        413: {"description": "The request body is too large."},
        422: {"description": "Invalid request, too many documents, or a document too long."},
        429: {"description": "Too many requests or tokens are waiting; retry after `Retry-After` seconds."},
    },
)
async def rerank(
    body: RerankRequest, request: Request, state: Annotated[ServerState, Depends(get_state)]
) -> RerankResponse | Response:
    """Scores every document with the Qwen3-Reranker (P(yes)) and returns them best first.

    Concurrent requests are scored together in shared batches; the response is the same as if
    the request had been scored alone.
    """
    texts = body.texts()
    check_request(body, texts, state)
    try:
        scores = await cancel_on_disconnect(
            request, state.scheduler.score(body.query, texts, body.instruction, body.max_tokens_per_doc)
        )
    except InvalidInput as error:  # this request's own text: validated before it met others
        invalid(error.location, str(error))
    except QueueFullError as error:
        retry = str(state.settings.retry_after_seconds)
        raise HTTPException(429, f"{error} Retry in {retry} s.", headers={"Retry-After": retry}) from error
    except ClientDisconnected:
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    ranked = sorted(range(len(scores)), key=lambda index: -scores[index])[: body.top_n]
    return RerankResponse(
        id=f"rerank-{uuid.uuid4().hex}",
        model=state.reranker.model_id,
        results=[
            RerankResultItem(
                index=index,
                relevance_score=scores[index],
                document=RerankDocument(text=texts[index]) if body.return_documents else None,
            )
            for index in ranked
        ],
        usage=RerankUsage(
            documents=len(texts), query_chars=len(body.query), document_chars=sum(map(len, texts))
        ),
    )


for alias in ALIASES:
    router.add_api_route(
        alias,
        rerank,
        methods=["POST"],
        response_model=RerankResponse,
        response_model_exclude_none=True,
        include_in_schema=False,
    )
