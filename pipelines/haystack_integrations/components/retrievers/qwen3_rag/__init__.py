"""Haystack retriever component over a qwen3-rag store (embedded or Elasticsearch).

It lives in the ``haystack_integrations`` namespace, which Haystack trusts when it loads a
pipeline from YAML, so pipelines that use it load without ``allowed_modules``.
"""

from .retriever import Qwen3RagRetriever, document_to_passage, passage_to_document

__all__ = ["Qwen3RagRetriever", "document_to_passage", "passage_to_document"]
