"""LlamaIndex node postprocessor that reranks with a Qwen3-Reranker."""

from qwen3_rerank.extras import requires

with requires("llamaindex", "llama_index.postprocessor.qwen3_rerank"):
    from llama_index.postprocessor.qwen3_rerank.base import RETRIEVAL_SCORE_KEY, Qwen3Rerank

__all__ = ["RETRIEVAL_SCORE_KEY", "Qwen3Rerank"]
