"""Text Embeddings Inference's and vLLM's rerank formats, translated to the one scoring path.

Self-hosting users and their tools already call these servers' endpoints; each is translated to
the texts `handlers.queued_scores` scores, so every format shares the model's queue, its limits
(``QWEN3_SERVER_MAX_DOCUMENTS``, ``..._MAX_DOCUMENT_CHARS``, ``..._MAX_TOKENS_PER_DOC``), the API
keys and the 429 with ``Retry-After``; the scores are the same P(yes) as ``/v1/rerank`` and
`Qwen3Reranker.score` in process.

- TEI's ``POST /rerank``: ``query``, ``texts``, ``raw_scores`` (the logit instead of the
  probability), ``return_text``, ``truncate``; the answer is a bare list of ``{index, score,
  text?}``, best first, and errors are TEI's ``{"error", "error_type"}``.
- vLLM's ``POST /score`` and ``/v1/score``: ``text_1`` (one text, or a list) against ``text_2``,
  one against many (1:N) or in pairs (N:N); the answer is vLLM's ``{"object": "list", "data":
  [{"index", "object": "score", "score"}], "usage"}`` in request order.
- ``POST /rerank`` is also vLLM's (and Jina's) path, with ``documents``: the body says which it is
  (`is_tei`), a ``texts`` list meaning TEI, so neither client has to change its URL.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError
from starlette.exceptions import HTTPException  # what `errors.invalid` raises; FastAPI's is a subclass

from qwen3_rerank import InvalidInput
from qwen3_rerank.reranker import best_first

from .errors import invalid
from .handlers import (
    BUSY,
    CLIENT_CLOSED_REQUEST,
    Location,
    check_lengths,
    check_sizes,
    rerank,
    scoring_errors,
    served_name,
)
from .observability import redact_json
from .queue import ClientDisconnected, cancel_on_disconnect
from .schemas import MAX_LIST_ITEMS, RerankRequest
from .state import ServerState, get_state

wire = APIRouter()  # behind the API key, like `handlers.api`

# The most and least P(yes) a float32 sigmoid returns short of 1 and 0: their logits (about
# +16.6 and -103) bound ``raw_scores``, where log(p / (1 - p)) would otherwise be infinite.
_HIGHEST_P = 1.0 - 2.0**-24
_LOWEST_P = 1e-45
# vLLM's N:N pairs may hold many queries, each its own queued request: this many wait at once.
QUERIES_AT_ONCE = 8


# --- Text Embeddings Inference ----------------------------------------------------------------


class TeiRerankRequest(BaseModel):
    """TEI's ``/rerank`` body (``text-embeddings-router``'s ``RerankRequest``)."""

    query: str = Field(min_length=1, description="The search query.")
    texts: list[str] = Field(max_length=MAX_LIST_ITEMS, description="Texts to rank.")
    raw_scores: StrictBool = Field(
        False, description="The logit log(p / (1 - p)) (yes minus no) instead of the probability p."
    )
    return_text: StrictBool = Field(False, description="Include each text in its result.")
    truncate: StrictBool | None = Field(
        None,
        description="true or unset: texts longer than QWEN3_SERVER_MAX_TOKENS_PER_DOC are cut to it "
        "(TEI's --auto-truncate); false: such a text is a 422.",
    )
    truncation_direction: Literal["Right", "right"] = Field(
        "Right", description="Only Right: the end of a text is cut, as the model card does."
    )


class TeiRank(BaseModel):
    index: int = Field(description="Position of the text in the request.")
    score: float = Field(description="P(yes), or its logit with `raw_scores`.")
    text: str | None = Field(None, description="Present when `return_text` is true.")


TEI_ERROR_TYPES = {413: "validation", 422: "validation", 429: "overloaded", 503: "unhealthy"}


def is_tei(body: Any) -> bool:
    """A TEI request carries ``texts``; Cohere, Jina and vLLM send ``documents``."""
    return isinstance(body, dict) and "texts" in body and "documents" not in body


async def tei_rerank(body: TeiRerankRequest, request: Request, state: ServerState) -> Response:
    """TEI's answer: every text's score, best first."""
    check_sizes(state, {"query": body.query}, len(body.texts), name="texts")
    check_lengths(state, "texts", body.texts)
    if body.truncate is False:
        await _refuse_long_texts(state, body.texts)
    work = state.scheduler.score_counted(body.query, body.texts)
    scores, _ = await scoring_errors(state, cancel_on_disconnect(request, work), _tei_location)
    ranks = [
        TeiRank(
            index=index,
            score=logit(scores[index]) if body.raw_scores else scores[index],
            text=body.texts[index] if body.return_text else None,
        ).model_dump(exclude_none=True)
        for index in best_first(scores)
    ]
    return JSONResponse(ranks)


def logit(probability: float) -> float:
    """log(p / (1 - p)): the yes-minus-no logit the model's P(yes) is the sigmoid of."""
    p = min(max(probability, _LOWEST_P), _HIGHEST_P)
    return math.log(p) - math.log1p(-p)


async def _refuse_long_texts(state: ServerState, texts: Sequence[str]) -> None:
    """With ``truncate: false``, TEI refuses rather than cuts: a 422 for the first text over the cap."""
    if not texts:  # the tokenizer fails on an empty batch; nothing is over the cap
        return
    limit = state.settings.max_tokens_per_doc
    tokenizer = state.reranker.loaded_model.tokenizer
    encoded = await asyncio.to_thread(tokenizer, list(texts), add_special_tokens=False)
    for index, ids in enumerate(encoded["input_ids"]):
        if len(ids) > limit:
            invalid(
                ("texts", index),
                f"{len(ids)} tokens, over QWEN3_SERVER_MAX_TOKENS_PER_DOC ({limit}); "
                "send `truncate: true` to cut it",
            )


def _tei_location(location: Location) -> Location:
    return ("texts", *location[1:]) if location and location[0] == "documents" else location


def tei_error(error: HTTPException, state: ServerState) -> JSONResponse:
    """An error as TEI writes it, ``{"error": ..., "error_type": ...}``, with our request id."""
    from asgi_correlation_id import correlation_id

    detail = error.detail
    if isinstance(detail, list):  # FastAPI-shaped 422s: "texts.3: message; ..."
        detail = "; ".join(_located(item) for item in detail)
    body = {
        "error": str(detail),
        "error_type": TEI_ERROR_TYPES.get(error.status_code, "backend"),
    }
    body = redact_json(body, state.secrets) | {"request_id": correlation_id.get()}
    return JSONResponse(body, status_code=error.status_code, headers=error.headers)


def _located(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    location = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
    return f"{location}: {item.get('msg', '')}" if location else str(item.get("msg", ""))


def _tei_validation(error: ValidationError) -> HTTPException:
    return HTTPException(422, [{"loc": list(item["loc"]), "msg": item["msg"]} for item in error.errors()])


@wire.post(
    "/rerank",
    summary="Rerank: Text Embeddings Inference (`texts`) or vLLM/Jina/Cohere (`documents`)",
    tags=["rerank"],
    responses={
        **BUSY,
        200: {"description": "TEI: a list of `{index, score, text?}`; otherwise as `/v1/rerank`."},
        422: {"description": "Invalid request; TEI's body is `{error, error_type}`."},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            TeiRerankRequest.model_json_schema(),
                            {"$ref": "#/components/schemas/RerankRequest"},
                        ]
                    }
                }
            },
        }
    },
)
async def shared_rerank(request: Request, state: Annotated[ServerState, Depends(get_state)]) -> Response:
    """TEI's ``/rerank`` when the body has ``texts``, else the ``/v1/rerank`` endpoint (vLLM's
    ``/rerank`` speaks its dialect)."""
    raw = await request.body()
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if not is_tei(body):
        try:
            parsed = RerankRequest.model_validate_json(raw.decode("utf-8", "replace"))
        except ValidationError as error:
            raise RequestValidationError(
                [{**item, "loc": ("body", *item["loc"])} for item in error.errors()]
            ) from error
        answer = await rerank(parsed, request, state)
        if isinstance(answer, Response):
            return answer
        return JSONResponse(answer.model_dump(exclude_none=True))
    try:
        try:
            tei = TeiRerankRequest.model_validate(body)
        except ValidationError as error:
            raise _tei_validation(error) from error
        return await tei_rerank(tei, request, state)
    except HTTPException as error:
        return tei_error(error, state)
    except ClientDisconnected:
        return Response(status_code=CLIENT_CLOSED_REQUEST)


# --- vLLM's score API -------------------------------------------------------------------------


TextOrList = str | Annotated[list[str], Field(max_length=MAX_LIST_ITEMS)]


class ScoreRequest(BaseModel):
    """vLLM's ``/score`` body: ``text_1`` against ``text_2``, 1:1, 1:N or N:N."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "text_1": "What is the capital of France?",
                    "text_2": ["The capital of Brazil is Brasilia.", "The capital of France is Paris."],
                }
            ]
        }
    )

    model: str | None = Field(None, description="One of the served names; unset: the served model.")
    text_1: TextOrList = Field(description="The query, or one query per pair.")
    text_2: TextOrList = Field(description="The texts scored against `text_1`.")
    truncate_prompt_tokens: StrictInt | None = Field(
        None,
        ge=-1,
        description="Cut each `text_2` to this many tokens (-1 or unset: the server's cap, "
        "QWEN3_SERVER_MAX_TOKENS_PER_DOC, which also bounds it).",
    )

    def pairs(self) -> list[tuple[str, str]]:
        """(query, text) per score, in order, by vLLM's rules; a 422 for lengths it refuses."""
        queries = [self.text_1] if isinstance(self.text_1, str) else self.text_1
        texts = [self.text_2] if isinstance(self.text_2, str) else self.text_2
        if not queries:
            invalid(("text_1",), "at least one text is needed")
        if not texts:
            invalid(("text_2",), "at least one text is needed")
        if len(queries) == 1:
            return [(queries[0], text) for text in texts]
        if len(queries) != len(texts):
            invalid(
                ("text_2",),
                f"lengths must be 1:1, 1:N or N:N; got {len(queries)} in text_1 and {len(texts)} in text_2",
            )
        return list(zip(queries, texts, strict=True))


class ScoreData(BaseModel):
    index: int
    object: Literal["score"] = "score"
    score: float = Field(description="P(yes) from the Qwen3-Reranker, in [0, 1].")


class ScoreUsage(BaseModel):
    prompt_tokens: int = Field(description="Tokens the model read (prompts included).")
    total_tokens: int
    completion_tokens: int = 0


class ScoreResponse(BaseModel):
    id: str
    object: Literal["list"] = "list"
    created: int
    model: str
    data: list[ScoreData]
    usage: ScoreUsage


async def score_pairs(
    state: ServerState, pairs: list[tuple[str, str]], max_tokens: int | None
) -> tuple[list[float], int]:
    """Each pair's P(yes), in order, and the tokens read. The pairs of one query are one queued
    request; up to `QUERIES_AT_ONCE` queries wait in the queue together (sharing model calls), so
    N:N pairs with many queries neither fill the queue alone nor go on after one of them fails."""
    groups = list(_by_query(pairs).items())
    scores = [0.0] * len(pairs)
    tokens = 0
    for start in range(0, len(groups), QUERIES_AT_ONCE):
        chunk = groups[start : start + QUERIES_AT_ONCE]
        tasks = [
            asyncio.ensure_future(_score_group(state, query, indices, pairs, max_tokens))
            for query, indices in chunk
        ]
        try:
            results = await asyncio.gather(*tasks)
        except BaseException:  # the first failure (a 422, a 429, a client gone) answers
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        for (_, indices), (group_scores, group_tokens) in zip(chunk, results, strict=True):
            tokens += group_tokens
            for index, value in zip(indices, group_scores, strict=True):
                scores[index] = value
    return scores, tokens


async def _score_group(
    state: ServerState, query: str, indices: list[int], pairs: list[tuple[str, str]], max_tokens: int | None
) -> tuple[list[float], int]:
    """One query's pairs as one queued request; a refused text named as vLLM's field."""
    try:
        return await state.scheduler.score_counted(query, [pairs[i][1] for i in indices], None, max_tokens)
    except InvalidInput as error:
        location = error.location
        if location and location[0] == "documents" and len(location) > 1:
            raise InvalidInput(("text_2", indices[int(location[1])]), str(error)) from None
        raise InvalidInput(("text_1", indices[0]), str(error)) from None


def _by_query(pairs: list[tuple[str, str]]) -> dict[str, list[int]]:
    """The positions of each distinct query's pairs, queries in order of first appearance."""
    by_query: dict[str, list[int]] = {}
    for index, (query, _) in enumerate(pairs):
        by_query.setdefault(query, []).append(index)
    return by_query


async def score(
    body: ScoreRequest, request: Request, state: Annotated[ServerState, Depends(get_state)]
) -> ScoreResponse | Response:
    """vLLM's score API: one score per (``text_1``, ``text_2``) pair, in request order."""
    served = served_name(body.model, state)
    pairs = body.pairs()
    check_sizes(state, {}, len(pairs), name="text_2")
    for name, texts in (("text_1", [q for q, _ in pairs]), ("text_2", [t for _, t in pairs])):
        check_lengths(state, name, texts)
    max_tokens = body.truncate_prompt_tokens if (body.truncate_prompt_tokens or 0) > 0 else None
    try:
        scores, tokens = await scoring_errors(
            state, cancel_on_disconnect(request, score_pairs(state, pairs, max_tokens))
        )
    except ClientDisconnected:
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    return ScoreResponse(
        id=f"score-{uuid.uuid4().hex}",
        created=int(time.time()),
        model=served,
        data=[ScoreData(index=index, score=value) for index, value in enumerate(scores)],
        usage=ScoreUsage(prompt_tokens=tokens, total_tokens=tokens),
    )


for path in ("/score", "/v1/score"):
    wire.add_api_route(
        path,
        score,
        methods=["POST"],
        response_model=ScoreResponse,
        summary="Score text pairs (vLLM's score API)",
        tags=["rerank"],
        include_in_schema=path == "/v1/score",
        responses={
            **BUSY,
            404: {"description": "`model` names no model this server serves."},
            422: {"description": "Invalid request, lengths not 1:1, 1:N or N:N, or texts too long."},
        },
    )
