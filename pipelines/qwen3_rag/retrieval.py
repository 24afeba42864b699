"""The retrieval layer both frameworks share: BM25 and dense search over a store, fused with RRF.

Both frameworks' retriever components (Haystack's ``Qwen3RagRetriever``, LlamaIndex's
``Qwen3RagLlamaIndexRetriever``) only call `HybridRetriever.search` and convert its passages.
Fusion runs in Python by default and in Elasticsearch (``retriever.rrf``) when the settings ask
for it or, with ``fusion="auto"``, when the cluster's licence allows it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, get_args

from qwen3_rerank.config import check_positive

from .embedding import Embedder
from .fusion import convex_fusion, reciprocal_rank_fusion
from .records import Passage
from .settings import Settings
from .stores import ChunkStore, FusingStore, StoreError

logger = logging.getLogger(__name__)

RetrievalMode = Literal["hybrid", "bm25", "dense"]
"""What a retriever component returns: the fused lists (the default), or one retriever's alone."""


@dataclass
class Retrieval:
    """The candidates for one query, with what each retriever returned and the seconds each took.

    ``bm25`` and ``dense`` are empty when Elasticsearch fused them server-side (``fused_by``).
    """

    query: str
    bm25: list[Passage]
    dense: list[Passage]
    fused: list[Passage]
    fused_by: str = "client"
    timings: dict[str, float] = field(default_factory=dict)

    def stages(self) -> dict[str, list[Passage]]:
        return {"bm25": self.bm25, "dense": self.dense, "fusion": self.fused}


class HybridRetriever:
    """BM25 + dense retrieval with reciprocal rank fusion.

    Example:
        >>> retriever = HybridRetriever(store, Embedder("BAAI/bge-m3"), Settings.from_env())
        >>> [p.source for p in retriever.retrieve("boiling point of water", candidates=10).fused]
    """

    def __init__(self, store: ChunkStore, embedder: Embedder, settings: Settings) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings

    def search(
        self,
        query: str,
        candidates: int,
        mode: RetrievalMode = "hybrid",
        sources: Sequence[str] | None = None,
    ) -> list[Passage]:
        """The candidates of one `RetrievalMode`, best first (what the retriever components return)."""
        if mode == "bm25":
            return self.bm25(query, candidates, sources)
        if mode == "dense":
            return self.dense(query, candidates, sources)
        return self.retrieve(query, candidates, sources).fused

    def bm25(self, query: str, candidates: int, sources: Sequence[str] | None = None) -> list[Passage]:
        """Lexical candidates only."""
        return self.store.bm25(query, candidates, sources)

    def dense(self, query: str, candidates: int, sources: Sequence[str] | None = None) -> list[Passage]:
        """Embedding-similarity candidates only."""
        return self.store.knn(self.embedder.embed_query(query), candidates, sources)

    def retrieve(self, query: str, candidates: int, sources: Sequence[str] | None = None) -> Retrieval:
        """BM25 and dense candidates (``candidates`` each) fused into ``candidates`` candidates."""
        timings: dict[str, float] = {}
        started = time.perf_counter()
        vector = self.embedder.embed_query(query)
        timings["embed"] = _since(started)
        if self.server_fusion and isinstance(self.store, FusingStore):
            started = time.perf_counter()
            fused = self.store.rrf(
                query, vector, candidates, rank_constant=self.settings.rrf_rank_constant, sources=sources
            )
            timings["fusion"] = _since(started)
            return Retrieval(query, [], [], fused, "elasticsearch", timings)
        started = time.perf_counter()
        bm25 = self.store.bm25(query, candidates, sources)
        timings["bm25"] = _since(started)
        started = time.perf_counter()
        dense = self.store.knn(vector, candidates, sources)
        timings["dense"] = _since(started)
        started = time.perf_counter()
        fused = self.fuse(bm25, dense, candidates)
        timings["fusion"] = _since(started)
        return Retrieval(query, bm25, dense, fused, "client", timings)

    def fuse(self, bm25: list[Passage], dense: list[Passage], candidates: int) -> list[Passage]:
        """RRF (the default), or the convex combination of normalised scores the settings ask for."""
        if self.settings.fusion_method == "convex":
            return convex_fusion(bm25, dense, dense_weight=self.settings.fusion_weight, top_k=candidates)
        rank_constant = self.settings.rrf_rank_constant
        return reciprocal_rank_fusion([bm25, dense], rank_constant=rank_constant, top_k=candidates)

    @cached_property
    def server_fusion(self) -> bool:
        """Whether Elasticsearch fuses (decided once per retriever, logged when it cannot)."""
        fusion, store = self.settings.fusion, self.store
        if self.settings.fusion_method != "rrf":
            if fusion == "elasticsearch":
                raise StoreError(
                    "fusion='elasticsearch' runs RRF only; use fusion_method='rrf' or fusion='client'"
                )
            return False
        if not isinstance(store, FusingStore):
            if fusion == "elasticsearch":
                raise StoreError(
                    f"fusion='elasticsearch' needs the Elasticsearch backend, not {self.settings.backend!r}"
                )
            return False
        if fusion == "client":
            return False
        return fusion == "elasticsearch" or store.supports_rrf()


def check_retrieval(mode: object, candidates: int, name: str = "candidates") -> None:
    """The arguments both retriever components take, checked the same way (``name`` is the
    component's own word for the count: Haystack's is ``top_k``)."""
    if mode not in get_args(RetrievalMode):
        raise ValueError(f"mode must be 'hybrid', 'bm25' or 'dense'; got {mode!r}")
    check_positive(name, candidates)


def component_for(
    retriever: object,
    wrap: Callable[[HybridRetriever], Any],
    is_component: Callable[[object], bool],
    expected: str,
) -> Any:
    """The retriever a framework's pipeline starts from: our `HybridRetriever` wrapped in the
    framework's component (``wrap``), or the caller's own component as it is.

    Raises:
        TypeError: ``retriever`` is neither (``expected`` names what the framework takes).
    """
    if isinstance(retriever, HybridRetriever):
        return wrap(retriever)
    if not is_component(retriever):
        raise TypeError(
            f"retriever must be a qwen3_rag HybridRetriever or {expected}; got {type(retriever).__name__}"
        )
    return retriever


def _since(started: float) -> float:
    return time.perf_counter() - started
