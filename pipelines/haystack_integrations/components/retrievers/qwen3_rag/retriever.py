"""`Qwen3RagRetriever`: hybrid (BM25 + dense, RRF), BM25-only or dense-only retrieval from a
qwen3-rag store, as a Haystack component.

The retrieval itself is the shared, framework-neutral layer (`qwen3_rag.retrieval`); this module
only turns its passages into Haystack ``Document``s and carries the configuration that
``to_dict``/``from_dict`` round-trip (secrets are read from the environment again). It belongs to
the pipelines layer (it lives under ``pipelines/``), beside `qwen3_rag.llamaindex`'s twin.
"""

from __future__ import annotations

from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict

from qwen3_rag.embedding import Embedder
from qwen3_rag.records import Passage
from qwen3_rag.retrieval import HybridRetriever, RetrievalMode, check_retrieval
from qwen3_rag.settings import Settings
from qwen3_rag.stores import open_store


@component
class Qwen3RagRetriever:
    """Hybrid (BM25 + dense, RRF), BM25-only or dense-only retrieval from a qwen3-rag store.

    Usage example:
        ```python
        from haystack_integrations.components.retrievers.qwen3_rag import Qwen3RagRetriever

        retriever = Qwen3RagRetriever(settings=Settings.from_env(backend="elasticsearch"), top_k=20)
        retriever.run(query="boiling point of water")["documents"]
        ```

    Pass ``settings`` to have the store and embedder built in `warm_up` (and the component
    serialisable with `to_dict`; secrets are read from the environment again by `from_dict`), or
    an existing ``retriever`` (e.g. ``RagService.retriever``) to share its loaded embedder.
    """

    def __init__(
        self,
        retriever: HybridRetriever | None = None,
        *,
        settings: Settings | None = None,
        top_k: int = 20,
        mode: RetrievalMode = "hybrid",
    ) -> None:
        if (retriever is None) == (settings is None):
            raise ValueError("pass exactly one of retriever= (a HybridRetriever) or settings= (a Settings)")
        check_retrieval(mode, top_k, name="top_k")
        self.settings = settings if settings is not None else retriever.settings  # type: ignore[union-attr]
        self.top_k = top_k
        self.mode = mode
        self._retriever = retriever

    def warm_up(self) -> None:
        """Open the store and prepare the embedder (which loads on the first query)."""
        if self._retriever is None:
            self._retriever = HybridRetriever(
                open_store(self.settings),
                Embedder(self.settings.embedding_model, device=self.settings.device),
                self.settings,
            )

    def to_dict(self) -> dict[str, Any]:
        """Serialise the settings (without secrets), ``top_k`` and ``mode``."""
        return default_to_dict(
            self, settings=self.settings.to_public_dict(), top_k=self.top_k, mode=self.mode
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Qwen3RagRetriever:
        """Rebuild from `to_dict`; secrets (ES_API_KEY, ES_PASSWORD) come from the environment."""
        parameters = data["init_parameters"]
        parameters["settings"] = Settings.from_env(**parameters["settings"])
        return default_from_dict(cls, data)

    @component.output_types(documents=list[Document])
    def run(
        self, query: str, top_k: int | None = None, sources: list[str] | None = None
    ) -> dict[str, list[Document]]:
        """Candidates for ``query``, best first; ``sources`` restricts them to those files."""
        self.warm_up()
        assert self._retriever is not None  # built by warm_up
        passages = self._retriever.search(query, top_k or self.top_k, self.mode, sources)
        return {"documents": [passage_to_document(passage) for passage in passages]}


def passage_to_document(passage: Passage) -> Document:
    return Document(
        id=passage.id,
        content=passage.text,
        score=passage.score,
        meta={**passage.meta, "source": passage.source},
    )


def document_to_passage(document: Document, rank: int) -> Passage:
    meta = dict(document.meta)
    source = str(meta.pop("source", ""))
    return Passage(document.id, document.content or "", source, float(document.score or 0.0), rank, meta)
