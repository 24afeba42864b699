"""The endpoints: ``/v1/rerank`` (and its aliases), ``/v1/ask``, ``/v1/documents``, ``/healthz``,
``/readyz``.

Each handler checks what is cheap first (the model name, sizes against the settings), then
hands the work to where it waits (`queue`): ``/v1/rerank`` to the model's queue, the pipeline's
blocking calls to their bounded pools. What a text may hold is checked once, by the core
(`InvalidInput` becomes a 422 naming the field); ranking is the core's `best_first`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from qwen3_rag.records import SourceText, display_source
from qwen3_rag.stores.base import IndexUnavailable, StoreBusy, StoreError
from qwen3_rerank import InvalidInput
from qwen3_rerank.reranker import best_first

from .errors import invalid, too_busy
from .observability import hide_paths, redact_json
from .queue import (
    BoundedPool,
    ClientDisconnected,
    PoolFull,
    PoolTimeout,
    QueueFullError,
    cancel_on_disconnect,
)
from .schemas import (
    AskRequest,
    AskResponse,
    DocumentsRequest,
    DocumentsResponse,
    PassageOut,
    RerankRequest,
    RerankResponse,
    RerankResultItem,
    RerankUsage,
    echoed,
)
from .state import ServerState, get_state

T = TypeVar("T")
Location = tuple[str | int, ...]

api = APIRouter()  # behind the API key, when keys are set
probes = APIRouter(tags=["health"])

# nginx's code for "client closed request": logged, never seen by the client that left.
CLIENT_CLOSED_REQUEST = 499
# Where other servers put the same API: Cohere's v2 SDK posts to /v2/rerank. vLLM serves
# /rerank, /v1/rerank and /v2/rerank alike; its /rerank (`documents`) shares the path with Text
# Embeddings Inference's (`texts`), so `wire` serves /rerank and tells the two apart by the body.
RERANK_ALIASES = ("/v2/rerank",)

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

BUSY = {429: {"description": "Too much work is waiting; retry after `Retry-After` seconds."}}
UNAVAILABLE = {
    **BUSY,
    503: {
        "description": "The RAG pipeline is disabled, not started, or its store cannot serve; "
        "with `Retry-After` when another process is writing the store."
    },
    504: {"description": "The pipeline call passed its deadline (QWEN3_SERVER_PIPELINE_TIMEOUT_S)."},
}


# --- /v1/rerank ---------------------------------------------------------------------------------


@api.post(
    "/v1/rerank",
    response_model=RerankResponse,
    response_model_exclude_none=True,
    summary="Rerank documents against a query",
    tags=["rerank"],
    responses={
        **BUSY,
        404: {"description": "`model` names no model this server serves."},
        413: {"description": "The request body is too large."},
        422: {"description": "Invalid request, too many documents, or a document too long."},
    },
)
async def rerank(
    body: RerankRequest, request: Request, state: Annotated[ServerState, Depends(get_state)]
) -> RerankResponse | Response:
    """Scores every document with the Qwen3-Reranker (P(yes)) and returns them best first.

    Concurrent requests are scored together in shared batches; the response is the same as if
    the request had been scored alone.
    """
    served = served_name(body.model, state)
    texts = checked_texts(body, state)
    try:
        scores, _ = await queued_scores(
            request, state, body.query, texts, body.instruction, body.max_tokens_per_doc
        )
    except ClientDisconnected:
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    return RerankResponse(
        id=f"rerank-{uuid.uuid4().hex}",
        model=served,
        results=[
            RerankResultItem(
                index=index,
                relevance_score=scores[index],
                document=echoed(body.documents[index]) if body.return_documents else None,
            )
            for index in best_first(scores, body.top_n)
        ],
        usage=RerankUsage(
            documents=len(texts), query_chars=len(body.query), document_chars=sum(map(len, texts))
        ),
    )


for alias in RERANK_ALIASES:
    api.add_api_route(
        alias,
        rerank,
        methods=["POST"],
        response_model=RerankResponse,
        response_model_exclude_none=True,
        include_in_schema=False,
    )


async def queued_scores(
    request: Request,
    state: ServerState,
    query: str,
    texts: list[str],
    instruction: str | None = None,
    max_tokens_per_doc: int | None = None,
) -> tuple[list[float], int]:
    """P(yes) per text and the prompt tokens read: the one scoring path of every wire format
    (Cohere/Jina here, TEI and vLLM in `wire`), so all share the queue, its limits and its errors.

    Raises:
        HTTPException: 422 for this request's own text, 429 when the queue is full.
        ClientDisconnected: The client left; its work was dropped.
    """
    work = state.scheduler.score_counted(query, texts, instruction, max_tokens_per_doc)
    return await scoring_errors(state, cancel_on_disconnect(request, work))


async def scoring_errors(
    state: ServerState, work: Awaitable[T], locate: Callable[[Location], Location] | None = None
) -> T:
    """``await work``, its refusals as HTTP errors: the core's `InvalidInput` as a 422 at
    ``locate(location)`` (a wire format names its fields its own way), a full queue as the 429."""
    try:
        return await work
    except InvalidInput as error:  # this request's own text: validated before it met others
        invalid(locate(error.location) if locate else error.location, str(error))
    except QueueFullError as error:
        raise too_busy(str(error), state.settings.retry_after_seconds) from error


def served_name(requested: str | None, state: ServerState) -> str:
    """The name the response carries: the one asked for, if served; else a 404 listing the
    names that are. A client that believes it talks to another model should learn it does not."""
    names = state.served_model_names()
    shown = state.public_model_names()  # a local model's path is accepted, never shown
    if requested is None or requested in names:
        return requested if requested in shown else shown[0]
    error = HTTPException(
        404,
        f"model {requested!r} is not served here. Accepted names: {', '.join(map(repr, shown))}; "
        "omit `model`, or add the name to QWEN3_SERVER_SERVED_MODEL_NAMES (--served-model-name).",
    )
    error.extra = {"accepted_models": shown}  # type: ignore[attr-defined]
    raise error


def checked_texts(body: RerankRequest, state: ServerState) -> list[str]:
    """The texts to rank, within the server's sizes, so one request cannot hog the model."""
    check_sizes(state, {"query": body.query, "instruction": body.instruction or ""}, len(body.documents))
    texts = body.texts()
    for index, text in enumerate(texts):
        if text is None:
            invalid(
                ("documents", index),
                "an object document needs `text`, or `rank_fields` naming fields it has",
            )
    check_lengths(state, "documents", texts)  # type: ignore[arg-type]  # no None is left
    return texts  # type: ignore[return-value]


def check_sizes(state: ServerState, fields: dict[str, str], count: int, name: str = "documents") -> None:
    """At most ``QWEN3_SERVER_MAX_DOCUMENTS`` texts in list ``name``, and each of ``fields``
    (the query, the instruction) within ``QWEN3_SERVER_MAX_DOCUMENT_CHARS``."""
    settings = state.settings
    if count > settings.max_documents:
        invalid((name,), f"at most {settings.max_documents} {name} per request; got {count}")
    limit = settings.max_document_chars
    for field_name, text in fields.items():
        if len(text) > limit:
            invalid((field_name,), f"at most {limit} characters; got {len(text)}")


def check_lengths(state: ServerState, name: str, texts: list[str]) -> None:
    """Each of ``texts`` (list ``name`` of the request) within ``QWEN3_SERVER_MAX_DOCUMENT_CHARS``."""
    limit = state.settings.max_document_chars
    for index, text in enumerate(texts):
        if len(text) > limit:
            invalid((name, index), f"at most {limit} characters per document; got {len(text)}")


# --- /v1/ask and /v1/documents --------------------------------------------------------------------


@api.post(
    "/v1/ask",
    response_model=AskResponse,
    summary="Answer a question with sources",
    tags=["rag"],
    responses=UNAVAILABLE,
)
async def ask(
    body: AskRequest, request: Request, state: Annotated[ServerState, Depends(get_state)]
) -> AskResponse | Response:
    """Retrieves (BM25 + dense, fused), reranks with the served Qwen3-Reranker, and answers
    citing passages as [1], [2], ...; ``passages[n - 1]`` is the passage cited as [n]."""
    rag = state.require_rag()
    await check_question(body.question, state)
    try:
        answer = await cancel_on_disconnect(
            request,
            pipeline_call(
                state, state.ask_pool, rag.ask, body.question, candidates=body.candidates, top_n=body.top_n
            ),
        )
    except ClientDisconnected:
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    return AskResponse(
        answer=answer.answer,
        passages=[
            PassageOut(rank=p.rank, id=p.id, text=p.text, source=display_source(p.source), score=p.score)
            for p in answer.passages
        ],
        timings=dict(answer.timings),
    )


async def check_question(question: str, state: ServerState) -> None:
    """A question within its caps in characters, then in tokens, before any work: it is
    repeated in every candidate's prompt, so its size multiplies by ``candidates``."""
    settings = state.settings
    if not question.strip():
        invalid(("question",), "question must contain non-whitespace text")
    if len(question) > settings.max_question_chars:
        invalid(
            ("question",),
            f"at most {settings.max_question_chars} characters (QWEN3_SERVER_MAX_QUESTION_CHARS); "
            f"got {len(question)}",
        )
    tokenizer = state.reranker.loaded_model.tokenizer
    tokens = len(await asyncio.to_thread(tokenizer.encode, question, add_special_tokens=False))
    if tokens > settings.max_question_tokens:
        invalid(
            ("question",),
            f"at most {settings.max_question_tokens} tokens (QWEN3_SERVER_MAX_QUESTION_TOKENS); got {tokens}",
        )


def writes_allowed(state: Annotated[ServerState, Depends(get_state)]) -> None:
    """403 unless ``QWEN3_SERVER_ALLOW_WRITES`` is on (a dependency, so before the body is parsed)."""
    if not state.settings.allow_writes:
        raise HTTPException(
            403,
            "Indexing over HTTP is off: start the server with QWEN3_SERVER_ALLOW_WRITES=true "
            "(and API keys, if others can reach it) to add or replace documents.",
        )


@api.post(
    "/v1/documents",
    response_model=DocumentsResponse,
    summary="Index documents",
    tags=["rag"],
    responses={**UNAVAILABLE, 403: {"description": "Writes are off (QWEN3_SERVER_ALLOW_WRITES)."}},
    dependencies=[Depends(writes_allowed)],
)
async def add_documents(
    body: DocumentsRequest, state: Annotated[ServerState, Depends(get_state)]
) -> DocumentsResponse:
    """Chunks, embeds and indexes the documents; indexing the same text and source twice
    replaces it rather than duplicating it."""
    rag = state.require_rag()
    sources = [SourceText(text=d.text, source=d.source, meta=dict(d.meta)) for d in body.documents]
    report = await pipeline_call(state, state.documents_pool, rag.index_documents, sources)
    count = await pipeline_call(state, state.documents_pool, rag.document_count)
    return DocumentsResponse(indexed=_as_dict(report), document_count=count)


async def pipeline_call(
    state: ServerState, pool: BoundedPool, function: Any, *args: Any, **kwargs: Any
) -> Any:
    """Run a blocking pipeline call on ``pool``, its failures as HTTP errors."""
    retry_after = state.settings.retry_after_seconds
    try:
        return await pool.run(function, *args, **kwargs)
    except (PoolFull, QueueFullError) as error:  # a full pool, or the model queue /v1/rerank shares
        raise too_busy(str(error), retry_after) from error
    except PoolTimeout as error:
        raise HTTPException(504, str(error)) from error
    except InvalidInput as error:
        invalid(error.location, str(error))
    except ValueError as error:  # the pipeline's words may name its files: cut to their last part
        raise HTTPException(422, hide_paths(str(error))) from error
    except StoreBusy as error:  # another process is writing the embedded store: send it again
        retry = {"Retry-After": str(retry_after)}
        raise HTTPException(503, hide_paths(f"The document store is busy: {error}"), headers=retry) from error
    except (*UNREACHABLE, StoreError) as error:
        raise HTTPException(503, hide_paths(f"The document store cannot serve: {error}")) from error


def _as_dict(report: Any) -> dict[str, Any]:
    return dataclasses.asdict(report) if dataclasses.is_dataclass(report) else dict(report)


# --- Probes -----------------------------------------------------------------------------------------


@probes.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """The process answers; never touches a dependency (Docker's health check restarts on it)."""
    return {"status": "ok"}


@probes.get("/readyz", summary="Readiness: model loaded, batcher running, document store reachable")
async def readyz(state: Annotated[ServerState, Depends(get_state)]) -> JSONResponse:
    """200 when every part that is switched on works, else 503 with the failing parts named.

    Open without a key (orchestrators carry none), so it shows no secret and no local path:
    the model by its served name, errors with paths cut to their last part.
    """
    ready, checks = await readiness(state)
    body = {"status": "ready" if ready else "not ready", **checks}
    body = _without_paths(redact_json(body, state.secrets))
    return JSONResponse(body, status_code=200 if ready else 503)


async def readiness(state: ServerState) -> tuple[bool, dict[str, Any]]:
    """Whether the server can do its job, and each part's state: the one place readiness is decided.

    The store ping runs on a thread of its own with a short deadline
    (``QWEN3_SERVER_READINESS_TIMEOUT_S``), so this answers in well under a second even while
    Elasticsearch hangs and asks wait on it.
    """
    rag = await _rag_check(state)
    checks: dict[str, Any] = {
        "model": state.served_model_names()[0],
        "device": str(state.reranker.device),
        "batcher": "running" if state.batcher.running else "stopped",
        "rag": rag,
        "corpus": state.corpus if state.corpus_error is None else f"failed: {state.corpus_error}",
        "batches": dataclasses.asdict(state.batcher.stats),
    }
    # With rag="auto" a pipeline that did not start is a chosen degradation, not a failure.
    rag_ok = rag in ("ok", "off") or (state.settings.rag == "auto" and state.rag is None)
    return state.batcher.running and rag_ok, checks


async def _rag_check(state: ServerState) -> str:
    if state.rag is None:
        return "off" if state.settings.rag == "off" else f"unavailable: {state.rag_error}"
    try:
        await state.readiness.check(state.rag.ping)
    except IndexUnavailable as error:  # reachable, but its index cannot be searched: say why
        return f"index unavailable: {error.reason}"
    except Exception as error:  # any failure means "not ready", with the reason shown
        return f"store unreachable: {error or type(error).__name__}"
    return "ok"


def _without_paths(value: Any) -> Any:
    if isinstance(value, str):
        return hide_paths(value)
    if isinstance(value, dict):
        return {key: _without_paths(item) for key, item in value.items()}
    return value
