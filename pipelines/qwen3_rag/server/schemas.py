"""Request and response bodies of the HTTP API: types and sizes only.

``/v1/rerank`` speaks the dialect that Cohere, Jina, vLLM and Text Embeddings Inference clients
already send: ``query``, ``documents`` as strings or objects, ``top_n``, ``return_documents``,
Cohere's ``max_tokens_per_doc`` and v1 ``rank_fields``; results carry ``index`` and
``relevance_score``. Unknown fields (Jina's ``truncation``) are ignored, so those clients work by
changing a URL. Numbers and flags are strict (``true`` or ``"1"`` is not an int, ``"yes"`` not a
bool), and every list has a hard cap checked before its items, so 500,000 invalid items cost one
error, not 500,000.

What a text may hold is the core's to say: `Qwen3Reranker.prepare` refuses a blank query or a
lone surrogate (``"\ud800"``) with `InvalidInput` naming the field, before the request meets
another in a shared batch. The pipeline endpoints, whose text the core never sees whole, check
it here (`Text`).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

# Hard caps on list lengths, checked before any item is validated; the settings may lower them.
MAX_LIST_ITEMS = 10_000  # Cohere's recommended most documents per rerank request
MAX_RANK_FIELDS = 100


def _valid_unicode(text: str) -> str:
    """Refuse lone surrogates: text must be encodable as UTF-8 to be tokenized or stored."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(
            f"text must be valid Unicode; found a lone surrogate at character {error.start}"
        ) from None
    return text


Text = Annotated[str, AfterValidator(_valid_unicode)]


def _valid_scalar(value: Any) -> Any:
    return _valid_unicode(value) if isinstance(value, str) else value


# A field of a document object: one error naming the field when its text is not valid Unicode.
Scalar = Annotated[str | StrictInt | float | StrictBool | None, AfterValidator(_valid_scalar)]


class DocumentObject(BaseModel):
    """A document given as an object, as Jina and Cohere v1 allow: ``text``, or the fields that
    ``rank_fields`` names; every field is kept and echoed back with ``return_documents``, so every
    name and text in it must be valid Unicode (a lone surrogate cannot be written as UTF-8: it
    is a 422 here, naming the field, not a 500 when the response is written)."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    __pydantic_extra__: dict[str, Scalar]

    text: Text | None = Field(None, description="The document's text (unless `rank_fields` says otherwise).")

    @model_validator(mode="before")
    @classmethod
    def _valid_names(cls, data: Any) -> Any:
        for name in data if isinstance(data, dict) else ():
            try:
                _valid_unicode(name)
            except ValueError as error:
                raise ValueError(
                    f"field name {name.encode('utf-8', 'backslashreplace').decode()!r}: {error}"
                ) from None
        return data


class RerankRequest(BaseModel):
    """Score ``documents`` against ``query`` and return them best first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "query": "What is the capital of France?",
                    "documents": ["Berlin is the capital of Germany.", "Paris is the capital of France."],
                    "top_n": 1,
                    "return_documents": True,
                }
            ]
        }
    )

    query: str = Field(min_length=1, description="The search query.")
    documents: list[str | DocumentObject] = Field(
        max_length=MAX_LIST_ITEMS, description="Texts to rank, as strings or objects ({'text': ...})."
    )
    top_n: StrictInt | None = Field(
        None, ge=1, description="Return only the best `top_n` results; all if unset."
    )
    return_documents: StrictBool = Field(False, description="Include each document in its result.")
    instruction: str | None = Field(
        None, description="Task instruction for the Qwen3 prompt; unset uses the model card's default."
    )
    model: str | None = Field(
        None,
        description="One of the served names (`QWEN3_SERVER_SERVED_MODEL_NAMES`); unset: the served model.",
    )
    max_tokens_per_doc: StrictInt | None = Field(
        None,
        ge=1,
        description="Truncate each document to this many tokens, as Cohere's v2 API does; the "
        "server's own cap (`QWEN3_SERVER_MAX_TOKENS_PER_DOC`) applies when lower or unset.",
    )
    rank_fields: list[str] | None = Field(
        None,
        max_length=MAX_RANK_FIELDS,
        description="Cohere v1: for object documents, the fields ranked, in order, as `field: value` lines.",
    )

    def texts(self) -> list[str | None]:
        """The text each document is ranked by, in request order; ``None`` where an object has
        neither ``text`` nor any of ``rank_fields``."""
        return [_ranked_text(document, self.rank_fields) for document in self.documents]


def _ranked_text(document: str | DocumentObject, rank_fields: list[str] | None) -> str | None:
    if isinstance(document, str):
        return document
    if not rank_fields:
        return document.text
    fields = document.model_dump(exclude_none=True)
    lines = [f"{name}: {_field_text(fields[name])}" for name in rank_fields if name in fields]
    return "\n".join(lines) or None


def _field_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def echoed(document: str | DocumentObject) -> dict[str, Any]:
    """A document as ``return_documents`` shows it: ``{"text": ...}``, or the object as sent."""
    return {"text": document} if isinstance(document, str) else document.model_dump(exclude_none=True)


class RerankResultItem(BaseModel):
    index: int = Field(description="Position of the document in the request.")
    relevance_score: float = Field(description="P(yes) from the Qwen3-Reranker, in [0, 1].")
    document: dict[str, Any] | None = Field(
        None, description="Present when `return_documents` is true: the document as sent."
    )


class RerankUsage(BaseModel):
    documents: int = Field(description="Documents scored.")
    query_chars: int
    document_chars: int


class RerankResponse(BaseModel):
    id: str
    model: str
    results: list[RerankResultItem]
    usage: RerankUsage


class AskRequest(BaseModel):
    question: Text = Field(min_length=1, description="The question to answer from the indexed documents.")
    candidates: StrictInt | None = Field(None, ge=1, le=1000, description="Passages retrieved and reranked.")
    top_n: StrictInt | None = Field(
        None, ge=1, le=100, description="Passages kept after reranking and cited."
    )


class PassageOut(BaseModel):
    rank: int = Field(description="1-based; the answer cites passage `rank` as `[rank]`.")
    id: str
    text: str
    source: str
    score: float


class AskResponse(BaseModel):
    answer: str
    passages: list[PassageOut]
    timings: dict[str, float] = Field(description="Seconds spent in each stage.")


class DocumentIn(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    text: Text = Field(min_length=1)
    source: Text = Field(min_length=1, description="Where the text comes from (file name, URL); cited back.")
    meta: dict[Text, Text | StrictInt | float | StrictBool] = Field(
        default_factory=dict, max_length=MAX_RANK_FIELDS
    )


class DocumentsRequest(BaseModel):
    documents: list[DocumentIn] = Field(min_length=1, max_length=MAX_LIST_ITEMS)


class DocumentsResponse(BaseModel):
    indexed: dict[str, Any] = Field(description="The pipeline's indexing report.")
    document_count: int
