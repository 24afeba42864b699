"""Haystack ranker that reranks documents with a Qwen3-Reranker."""

from haystack_integrations.components.rankers.qwen3.ranker import Qwen3Ranker

__all__ = ["Qwen3Ranker"]
