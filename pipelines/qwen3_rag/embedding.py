"""Dense embeddings through sentence-transformers, for documents at indexing and queries at search.

Models such as Qwen3-Embedding or E5 embed queries and documents with different prompts;
``encode_query``/``encode_document`` apply the ones the model's configuration declares, so the
pipeline never hard-codes a prompt. Embeddings are L2-normalised, which makes cosine, dot
product and Elasticsearch's ``cosine`` similarity agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING

from qwen3_rerank.extras import missing

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


class Embedder:
    """Embeds text with a sentence-transformers model, loaded on first use.

    Example:
        >>> embedder = Embedder("sentence-transformers/all-MiniLM-L6-v2")
        >>> embedder.dimension
        384
    """

    def __init__(self, model: str, *, device: str | None = None, batch_size: int = 32) -> None:
        if not model:
            raise ValueError("model must name a sentence-transformers model id or directory")
        self.model_name = model
        self.device = device
        self.batch_size = batch_size

    @cached_property
    def model(self) -> SentenceTransformer:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as error:
            advice = " (included in [haystack-pipelines] and [llamaindex-pipelines])"
            raise missing(error, "Embeddings", advice) from error
        from qwen3_rerank.loading import load_failure, offline_options

        try:
            return SentenceTransformer(
                self.model_name, device=self.device, **offline_options(self.model_name)
            )
        except OSError as error:
            fix = "Pass model= a sentence-transformers model id or directory"
            raise load_failure("embedding model", self.model_name, error, fix) from error

    @property
    def dimension(self) -> int:
        """The embedding size, read from the model (the Elasticsearch mapping's ``dims``)."""
        dimension = self.model.get_embedding_dimension()
        if not dimension:
            raise ValueError(f"cannot read the embedding dimension of {self.model_name!r}")
        return int(dimension)

    def embed_documents(self, texts: Sequence[str], *, show_progress: bool = False) -> list[list[float]]:
        """Embed passages in batches, with a progress bar when asked."""
        if not texts:
            return []
        vectors = self.model.encode_document(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=show_progress,
        )
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        """Embed one search query."""
        return self.model.encode_query([text], normalize_embeddings=True)[0].tolist()
