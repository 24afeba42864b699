"""`Qwen3Rerank`: a LlamaIndex node postprocessor backed by the shared Qwen3 scoring core.

The class only translates: nodes become texts for `qwen3_rerank.Qwen3Reranker.rerank`, and its
ranking becomes new `NodeWithScore` objects. Prompting, batching and scoring live in the core, so
a Haystack `Qwen3Ranker` in the same process scores identically and shares the loaded weights.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.callbacks import CallbackManager, CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from qwen3_rerank import DEFAULT_MODEL, Qwen3Reranker, RerankResult
from qwen3_rerank.config import knobs
from qwen3_rerank.reranker import open_for
from qwen3_rerank.settings import reranker_fields

dispatcher = get_dispatcher(__name__)

RETRIEVAL_SCORE_KEY = "retrieval_score"
"""Metadata key under which ``keep_retrieval_score=True`` keeps the retriever's score."""


# Every reranker setting is a field, declared by `RerankerConfig` (the token stays out: fields are
# serialised); the instruction is passed with each call, so a shared ``reranker=`` never conflicts.
RERANKER_FIELDS = [spec.name for spec in knobs()]


class Qwen3Rerank(reranker_fields(BaseNodePostprocessor)):
    """Reranks retrieved nodes with a Qwen3-Reranker (P(yes) scores in [0, 1]).

    Example:
        >>> from llama_index.postprocessor.qwen3_rerank import Qwen3Rerank
        >>> rerank = Qwen3Rerank(model="Qwen/Qwen3-Reranker-0.6B", top_n=3)
        >>> engine = index.as_query_engine(similarity_top_k=20, node_postprocessors=[rerank])

    Besides its own fields, it has one per `qwen3_rerank.RerankerConfig` setting (``model``,
    ``device``, ``dtype``, ``max_length``, ``batch_tokens``, ``long_documents``, ...), with the
    core's defaults and descriptions. They become one config; components whose configs name the
    same model, device, dtype and revision share the weights through the core's registry. Pass
    ``reranker=`` to take an existing reranker's config (settings given alongside must agree).
    After construction the fields hold the settings in use (resolved device, dtype, batch size).
    """

    top_n: int = Field(default=5, gt=0, description="Number of nodes to return, best first.")
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
        callback_manager: CallbackManager | None = None,
        **fields: Any,
    ) -> None:
        unknown = sorted(set(fields) - set(type(self).model_fields))
        if unknown:
            raise TypeError(f"Qwen3Rerank got unknown argument(s) {unknown}.")
        # Pydantic validates the fields before any weights are loaded.
        super().__init__(
            model=model, top_n=top_n, callback_manager=callback_manager or CallbackManager(), **fields
        )
        self._reranker = open_for(self, reranker, RERANKER_FIELDS)  # fields then show what is in use

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
