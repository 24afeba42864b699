"""Request and response bodies of the HTTP API.

``/v1/rerank`` speaks the dialect that Cohere, Jina, vLLM and Text Embeddings Inference clients
already send: ``query``, ``documents`` as strings or ``{"text": ...}`` objects, ``top_n``,
``return_documents``, Cohere's ``max_tokens_per_doc``; results carry ``index`` and
``relevance_score``. Unknown fields (Jina's ``truncation``) are ignored, so those clients work by
changing a URL.

Every text field is `Text`: JSON may escape a lone surrogate (``"\ud800"``), which Python keeps
but no tokenizer or UTF-8 encoder accepts, so such a request is refused here with a 422 naming the
field, before it can meet another request's text in a shared batch.
"""

from __future__ import annotations

from typing import Annotated, Any, NoReturn

from fastapi import HTTPException
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator


def invalid(location: tuple[str | int, ...], message: str) -> NoReturn:
    """A 422 shaped like FastAPI's own validation errors, so clients parse one format."""
    raise HTTPException(422, [{"loc": ["body", *location], "msg": message, "type": "value_error"}])


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


class DocumentObject(BaseModel):
    """A document given as an object, as Jina and Cohere v1 allow."""

    text: Text = Field(description="The document's text.")


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

    query: Text = Field(min_length=1, description="The search query.")
    documents: list[str | DocumentObject] = Field(description="Texts to rank, as strings or {'text': ...}.")
    top_n: int | None = Field(None, ge=1, description="Return only the best `top_n` results; all if unset.")
    return_documents: bool = Field(False, description="Include each document's text in its result.")
    instruction: Text | None = Field(
        None, description="Task instruction for the Qwen3 prompt; unset uses the model card's default."
    )
    model: Text | None = Field(None, description="Accepted for compatibility; must name the served model.")
    max_tokens_per_doc: int | None = Field(
        None,
        ge=1,
        description="Truncate each document to this many tokens, as Cohere's v2 API does; the "
        "server's own cap (`QWEN3_SERVER_MAX_TOKENS_PER_DOC`) applies when lower or unset.",
    )

    @field_validator("documents")
    @classmethod
    def _documents_are_valid_unicode(cls, documents: list[Any]) -> list[Any]:
        # Checked here rather than as `Text` in the union, which would rename its error tags.
        for index, document in enumerate(documents):
            if isinstance(document, str):
                try:
                    _valid_unicode(document)
                except ValueError as error:
                    raise ValueError(f"documents[{index}]: {error}") from None
        return documents

    def texts(self) -> list[str]:
        """The documents as plain strings, in request order."""
        return [document if isinstance(document, str) else document.text for document in self.documents]


class RerankDocument(BaseModel):
    text: str


class RerankResultItem(BaseModel):
    index: int = Field(description="Position of the document in the request.")
    relevance_score: float = Field(description="P(yes) from the Qwen3-Reranker, in [0, 1].")
    document: RerankDocument | None = Field(None, description="Present when `return_documents` is true.")


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
    candidates: int | None = Field(None, ge=1, le=1000, description="Passages retrieved and reranked.")
    top_n: int | None = Field(None, ge=1, le=100, description="Passages kept after reranking and cited.")


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
    meta: dict[Text, Text | int | float | bool] = Field(default_factory=dict)


class DocumentsRequest(BaseModel):
    documents: list[DocumentIn] = Field(min_length=1)


class DocumentsResponse(BaseModel):
    indexed: dict[str, Any] = Field(description="The pipeline's indexing report.")
    document_count: int
