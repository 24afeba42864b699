"""LangChain document compressor that reranks with a Qwen3-Reranker."""

from qwen3_rerank.extras import requires

with requires("langchain", "langchain_qwen3_rerank"):
    from langchain_qwen3_rerank.rerank import RELEVANCE_SCORE_KEY, Qwen3Rerank

__all__ = ["RELEVANCE_SCORE_KEY", "Qwen3Rerank"]
