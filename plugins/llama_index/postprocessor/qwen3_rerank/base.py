"""`Qwen3Rerank`: a LlamaIndex node postprocessor backed by the shared Qwen3 scoring core.

The class only translates: nodes become texts for `qwen3_rerank.Qwen3Reranker.rerank`, and its
ranking becomes new `NodeWithScore` objects. Prompting, batching and scoring live in the core, so
a Haystack `Qwen3Ranker` in the same process scores identically and shares the loaded weights.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.callbacks import CallbackManager, CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from qwen3_rerank import DEFAULT_MODEL, Qwen3Reranker, RerankResult
from qwen3_rerank.reranker import share

dispatcher = get_dispatcher(__name__)

RETRIEVAL_SCORE_KEY = "retrieval_score"
"""Metadata key under which ``keep_retrieval_score=True`` keeps the retriever's score."""


class Qwen3Rerank(BaseNodePostprocessor):
    """Reranks retrieved nodes with a Qwen3-Reranker (P(yes) scores in [0, 1]).

    Example:
        >>> from llama_index.postprocessor.qwen3_rerank import Qwen3Rerank
        >>> rerank = Qwen3Rerank(model="Qwen/Qwen3-Reranker-0.6B", top_n=3)
        >>> engine = index.as_query_engine(similarity_top_k=20, node_postprocessors=[rerank])

    The load settings become one `qwen3_rerank.RerankerConfig`; components whose configs name the
    same model, device, dtype and revision share the weights through the core's registry. Pass
    ``reranker=`` to take an existing reranker's config (settings given alongside must agree).
    """

    model: str = Field(description="Hugging Face Hub id or local directory of a Qwen3-Reranker.")
    top_n: int = Field(default=5, gt=0, description="Number of nodes to return, best first.")
    instruction: str | None = Field(
        default=None, description="Task instruction for the prompt; None uses the model card's default."
    )
    device: str | None = Field(
        default=None, description="Torch device ('cpu', 'cuda', 'cuda:1', 'mps'); None picks the best one."
    )
    dtype: str | None = Field(
        default=None, description="'float32', 'bfloat16' or 'float16'; None: float32 on CPU, bf16 on CUDA."
    )
    max_length: int = Field(
        default=8192, gt=0, description="Token limit of one prompt (the model card's 8192)."
    )
    batch_tokens: int | None = Field(
        default=None, gt=0, description="Padded tokens per forward pass; None: 1024 on CPU, 32768 on GPUs."
    )
    long_documents: Literal["truncate", "window"] = Field(
        default="truncate",
        description="'truncate' cuts overlong nodes like the model card; 'window' scores overlapping "
        "windows and keeps the best.",
    )
    window_overlap: int = Field(default=128, ge=0, description="Tokens shared by consecutive windows.")
    keep_retrieval_score: bool = Field(
        default=False,
        description=f"Keep the retriever's score in node metadata under {RETRIEVAL_SCORE_KEY!r} "
        "(hidden from embedding and LLM text).",
    )
    score_threshold: float | None = Field(
        default=None, description="Drop nodes scoring below this, before keeping the top_n."
    )

    _reranker: Qwen3Reranker = PrivateAttr()

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        top_n: int = 5,
        *,
        reranker: Qwen3Reranker | None = None,
        instruction: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        max_length: int = 8192,
        batch_tokens: int | None = None,
        long_documents: Literal["truncate", "window"] = "truncate",
        window_overlap: int = 128,
        keep_retrieval_score: bool = False,
        score_threshold: float | None = None,
        callback_manager: CallbackManager | None = None,
    ) -> None:
        settings = {
            "model": model,
            "device": device,
            "dtype": dtype,
            "max_length": max_length,
            "batch_tokens": batch_tokens,
            "long_documents": long_documents,
            "window_overlap": window_overlap,
        }
        # Pydantic validates the fields before any weights are loaded.
        super().__init__(
            **settings,
            top_n=top_n,
            instruction=instruction,
            keep_retrieval_score=keep_retrieval_score,
            score_threshold=score_threshold,
            callback_manager=callback_manager or CallbackManager(),
        )
        self._reranker = share(reranker, **settings)
        # The fields describe the weights actually in use (resolved device and dtype).
        resolved = self._reranker.config.to_dict()
        for name in settings:
            setattr(self, name, resolved[name])

    @classmethod
    def class_name(cls) -> str:
        return "Qwen3Rerank"

    @property
    def reranker(self) -> Qwen3Reranker:
        """The scoring core; pass it to a Haystack `Qwen3Ranker` to share its config and weights."""
        return self._reranker

    def close(self) -> None:
        """Release this postprocessor's use of the weights; a ``reranker=`` given stays usable."""
        self._reranker.close()

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        query_bundle = _require_query(query_bundle)
        if not nodes:
            return []
        with self._reranking(nodes, query_bundle) as finish:
            return finish(self._rank(query_bundle.query_str, _texts(nodes)))

    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        """Like `_postprocess_nodes`, with the forward passes in a worker thread so the event loop
        keeps serving other requests while the model runs."""
        query_bundle = _require_query(query_bundle)
        if not nodes:
            return []
        with self._reranking(nodes, query_bundle) as finish:
            return finish(await asyncio.to_thread(self._rank, query_bundle.query_str, _texts(nodes)))

    @contextmanager
    def _reranking(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle
    ) -> Iterator[Callable[[list[RerankResult]], list[NodeWithScore]]]:
        """The framework's events around one reranking; yields what turns a ranking into nodes."""
        dispatcher.event(
            ReRankStartEvent(query=query_bundle, nodes=nodes, top_n=self.top_n, model_name=self.model)
        )
        payload = {
            EventPayload.NODES: nodes,
            EventPayload.MODEL_NAME: self.model,
            EventPayload.QUERY_STR: query_bundle.query_str,
            EventPayload.TOP_K: self.top_n,
        }
        with self.callback_manager.event(CBEventType.RERANKING, payload=payload) as event:

            def finish(ranking: list[RerankResult]) -> list[NodeWithScore]:
                reranked = self._to_nodes(nodes, ranking)
                event.on_end(payload={EventPayload.NODES: reranked})
                dispatcher.event(ReRankEndEvent(nodes=reranked))
                return reranked

            yield finish

    def _rank(self, query: str, texts: list[str]) -> list[RerankResult]:
        """The core's ranking, cut by ``score_threshold`` first and ``top_n`` second."""
        ranking = self._reranker.rerank(query, texts, instruction=self.instruction)
        if self.score_threshold is not None:
            ranking = [result for result in ranking if result.score >= self.score_threshold]
        return ranking[: self.top_n]

    def _to_nodes(self, nodes: list[NodeWithScore], ranking: list[RerankResult]) -> list[NodeWithScore]:
        """New `NodeWithScore` objects in ranked order; the caller's nodes stay untouched."""
        return [
            NodeWithScore(node=self._output_node(nodes[result.index]), score=float(result.score))
            for result in ranking
        ]

    def _output_node(self, scored: NodeWithScore) -> Any:
        if not self.keep_retrieval_score:
            return scored.node
        # A copy gets the score, excluded from embed and LLM text so it never reaches a prompt.
        node = scored.node.model_copy(deep=True)
        node.metadata[RETRIEVAL_SCORE_KEY] = scored.score
        for excluded in (node.excluded_embed_metadata_keys, node.excluded_llm_metadata_keys):
            if RETRIEVAL_SCORE_KEY not in excluded:
                excluded.append(RETRIEVAL_SCORE_KEY)
        return node


def _require_query(query_bundle: QueryBundle | None) -> QueryBundle:
    if query_bundle is None:
        raise ValueError(
            "Qwen3Rerank needs the query: call postprocess_nodes(nodes, query_bundle=...) or query_str=..."
        )
    return query_bundle


def _texts(nodes: list[NodeWithScore]) -> list[str]:
    """What the reranker reads: the node text with its embed-visible metadata, as embedders see it."""
    return [scored.node.get_content(metadata_mode=MetadataMode.EMBED) for scored in nodes]
