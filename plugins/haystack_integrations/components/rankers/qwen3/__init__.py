"""Haystack ranker that reranks documents with a Qwen3-Reranker."""

from qwen3_rerank.extras import requires

with requires("haystack", "haystack_integrations.components.rankers.qwen3"):
    from haystack_integrations.components.rankers.qwen3.ranker import Qwen3Ranker

__all__ = ["Qwen3Ranker"]
