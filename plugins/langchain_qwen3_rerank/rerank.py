"""`Qwen3Rerank`: a LangChain document compressor backed by the shared Qwen3 scoring core.

The class only translates: documents become texts for `qwen3_rerank.Qwen3Reranker.rerank`, and its
ranking becomes copies of the documents with the score in their metadata, as langchain-cohere's
`CohereRerank` does. Prompting, batching and scoring live in the core, so a LlamaIndex or Haystack
adapter in the same process scores identically and shares the loaded weights.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from copy import deepcopy
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import ConfigDict, Field, PrivateAttr

from qwen3_rerank import Qwen3Reranker, RerankResult
from qwen3_rerank.config import knobs
from qwen3_rerank.reranker import open_for
from qwen3_rerank.settings import reranker_fields

RELEVANCE_SCORE_KEY = "relevance_score"
"""Metadata key of the reranker's score on each returned document (CohereRerank's key)."""

# Every reranker setting is a field, declared once by `RerankerConfig` (the token stays out);
# the instruction is passed with each call, so a shared ``reranker=`` never conflicts.
RERANKER_FIELDS = [spec.name for spec in knobs()]

_USE_TOP_N = -1
"""`rerank`'s default ``top_n``: this compressor's own ``top_n`` (CohereRerank's convention)."""


class Qwen3Rerank(reranker_fields(BaseDocumentCompressor)):
    """Reranks documents with a Qwen3-Reranker (P(yes) scores in [0, 1]), best first.

    Example:
        >>> from langchain_classic.retrievers import ContextualCompressionRetriever
        >>> from langchain_qwen3_rerank import Qwen3Rerank
        >>> compressor = Qwen3Rerank(model="Qwen/Qwen3-Reranker-0.6B", top_n=3)
        >>> retriever = ContextualCompressionRetriever(base_compressor=compressor, base_retriever=...)

    Each returned document is a copy of the input one with the score under
    ``metadata["relevance_score"]``; the caller's documents are left untouched. The load settings
    become one `qwen3_rerank.RerankerConfig`; components whose configs name the same model, device,
    dtype and revision (a LlamaIndex `Qwen3Rerank`, a Haystack `Qwen3Ranker`) share the weights
    through the core's registry. Pass ``reranker=`` to take an existing reranker's config (settings
    given alongside must agree).
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    top_n: int | None = Field(default=3, gt=0)
    """Number of documents to return, best first; None returns all of them."""

    _reranker: Qwen3Reranker = PrivateAttr()

    def __init__(self, *, reranker: Qwen3Reranker | None = None, **data: Any) -> None:
        # Pydantic validates the fields before any weights are loaded.
        super().__init__(**data)
        self._reranker = open_for(self, reranker, RERANKER_FIELDS)  # fields then show what is in use

    @property
    def reranker(self) -> Qwen3Reranker:
        """The scoring core; pass it to another adapter to share its config and weights."""
        return self._reranker

    def close(self) -> None:
        """Release this compressor's use of the weights; a ``reranker=`` given stays usable."""
        self._reranker.close()

    def rerank(
        self, documents: Sequence[str | Document], query: str, *, top_n: int | None = _USE_TOP_N
    ) -> list[dict[str, Any]]:
        """The documents' ranking as ``{"index", "relevance_score"}`` dicts, best first.

        The same shape as `CohereRerank.rerank`, so code written against it keeps working.

        Args:
            documents: Texts or `Document` objects (their ``page_content`` is scored).
            query: The query to rank them for.
            top_n: How many results to return; None returns all; by default this compressor's
                ``top_n``.
        """
        ranking = self._rank(query, _texts(documents), self.top_n if top_n == _USE_TOP_N else top_n)
        return [{"index": result.index, RELEVANCE_SCORE_KEY: result.score} for result in ranking]

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        """Copies of the ``top_n`` most relevant documents, best first, scored in their metadata."""
        texts = _texts(documents, documents_only=True)
        return _scored_copies(documents, self._rank(query, texts, self.top_n))

    async def acompress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        """Like `compress_documents`, with the forward passes in a worker thread so the event loop
        keeps serving other requests while the model runs."""
        texts = _texts(documents, documents_only=True)
        ranking = await asyncio.to_thread(self._rank, query, texts, self.top_n)
        return _scored_copies(documents, ranking)

    def _rank(self, query: str, texts: list[str], top_n: int | None) -> list[RerankResult]:
        return self._reranker.rerank(query, texts, top_n=top_n, instruction=self.instruction)


def _texts(documents: Sequence[str | Document], *, documents_only: bool = False) -> list[str]:
    """What the reranker reads: each document's ``page_content`` (as CohereRerank sends)."""
    if isinstance(documents, (str, Document)) or not isinstance(documents, Sequence):
        raise TypeError(f"documents must be a sequence of Document objects; got {type(documents).__name__}.")
    texts = []
    for position, document in enumerate(documents):
        if isinstance(document, Document):
            texts.append(document.page_content)
        elif isinstance(document, str) and not documents_only:
            texts.append(document)
        else:
            expected = "a langchain_core Document" if documents_only else "a str or a langchain_core Document"
            raise TypeError(f"documents[{position}] must be {expected}; got {type(document).__name__}.")
    return texts


def _scored_copies(documents: Sequence[Document], ranking: list[RerankResult]) -> list[Document]:
    """New documents in ranked order with the score in metadata; the caller's stay untouched."""
    return [
        documents[result.index].model_copy(
            update={
                "metadata": {
                    **deepcopy(documents[result.index].metadata),
                    RELEVANCE_SCORE_KEY: float(result.score),
                }
            }
        )
        for result in ranking
    ]
