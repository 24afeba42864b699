"""The pipeline composed with Haystack: a native retriever component over the shared retrieval
layer, the ``Qwen3Ranker`` adapter, ``ChatPromptBuilder`` and Haystack's chat generators.

`HaystackStages` is what `RagService` drives stage by stage (to time and show each stage);
`build_pipeline` connects the same components into one ``haystack.Pipeline`` for users who want
to extend it, with our retriever or any retriever component of theirs (for example
elasticsearch-haystack's ``ElasticsearchHybridRetriever``). The retriever component itself lives
in ``haystack_integrations.components.retrievers.qwen3_rag`` (``pipelines/haystack_integrations``:
loadable from YAML without an allow-list) and is re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from haystack import Pipeline
from haystack.components.builders import ChatPromptBuilder
from haystack.core.errors import PipelineConnectError
from haystack.dataclasses import ChatMessage
from haystack.utils import ComponentDevice, Secret

from haystack_integrations.components.rankers.qwen3 import Qwen3Ranker
from haystack_integrations.components.retrievers.qwen3_rag import (
    Qwen3RagRetriever,
    document_to_passage,
    passage_to_document,
)
from qwen3_rerank import Qwen3Reranker
from qwen3_rerank.extras import missing

from .generation import QA_TEMPLATE, ranked_passages_answer, template_documents
from .records import Passage
from .retrieval import HybridRetriever, component_for
from .settings import Settings

__all__ = [
    "HaystackStages",
    "Qwen3RagRetriever",
    "build_generator",
    "build_pipeline",
    "document_to_passage",
    "passage_to_document",
]


class HaystackStages:
    """Reranking and generation with Haystack components, for `RagService`."""

    def __init__(self, settings: Settings, reranker: Qwen3Reranker) -> None:
        self.settings = settings
        self.ranker = Qwen3Ranker(reranker=reranker, top_k=settings.top_n, instruction=settings.instruction)
        self.ranker.warm_up()  # as a haystack.Pipeline would: loading counts as load, not rerank
        generation = Pipeline()
        self.generation = generation if _add_generation(generation, settings) else None

    def rerank(self, question: str, passages: Sequence[Passage], top_n: int) -> list[Passage]:
        documents = [passage_to_document(passage) for passage in passages]
        ranked = self.ranker.run(query=question, documents=documents, top_k=top_n)["documents"]
        return [document_to_passage(document, rank) for rank, document in enumerate(ranked, start=1)]

    def close(self) -> None:
        self.ranker.close()

    def generate(self, question: str, passages: Sequence[Passage]) -> str:
        if self.generation is None or not passages:
            return ranked_passages_answer(passages)
        data = {"prompt_builder": {"question": question, "documents": template_documents(passages)}}
        replies = self.generation.run(data)["llm"]["replies"]
        return (replies[0].text or "") if replies else ""


def build_pipeline(settings: Settings, retriever: HybridRetriever | Any, reranker: Qwen3Reranker) -> Pipeline:
    """One ``haystack.Pipeline``: retriever -> Qwen3Ranker -> ChatPromptBuilder -> generator
    (the generator steps are left out with ``llm="none"``).

    ``retriever`` is our `HybridRetriever` (wrapped in `Qwen3RagRetriever`) or any Haystack
    component with a ``documents`` output, such as elasticsearch-haystack's
    ``ElasticsearchHybridRetriever`` over an index you already have.

    Example:
        >>> pipeline = build_pipeline(settings, service.retriever, service.reranker)
        >>> q = "boiling point of water"
        >>> data = {"retriever": {"query": q}, "ranker": {"query": q}, "prompt_builder": {"question": q}}
        >>> pipeline.run(data)
    """
    retriever = component_for(
        retriever,
        lambda hybrid: Qwen3RagRetriever(hybrid, top_k=settings.candidates),
        lambda candidate: hasattr(candidate, "__haystack_output__"),
        "a Haystack component with a 'documents' output (e.g. ElasticsearchHybridRetriever)",
    )
    pipeline = Pipeline()
    pipeline.add_component("retriever", retriever)
    pipeline.add_component(
        "ranker", Qwen3Ranker(reranker=reranker, top_k=settings.top_n, instruction=settings.instruction)
    )
    try:
        pipeline.connect("retriever.documents", "ranker.documents")
    except PipelineConnectError as error:
        raise TypeError(
            f"retriever {type(retriever).__name__} has no 'documents' output of list[Document] to rerank: "
            f"{error}"
        ) from error
    if _add_generation(pipeline, settings):
        pipeline.connect("ranker.documents", "prompt_builder.documents")
    return pipeline


def build_generator(settings: Settings) -> Any | None:
    """Haystack's chat generator for ``settings.llm``: ``OpenAIChatGenerator`` for any
    OpenAI-compatible endpoint, ``TransformersChatGenerator`` for a local model, None for none."""
    if settings.llm == "none":
        return None
    if settings.llm == "openai":
        from haystack.components.generators.chat import OpenAIChatGenerator

        return OpenAIChatGenerator(
            api_key=Secret.from_token(_openai_key(settings)),
            model=settings.llm_model,
            api_base_url=settings.llm_base_url,
            generation_kwargs={"max_tokens": settings.max_new_tokens},
        )
    try:
        from haystack_integrations.components.generators.transformers import TransformersChatGenerator
    except ImportError as error:
        raise missing(error, "--llm hf with Haystack") from error
    return TransformersChatGenerator(
        model=settings.llm_model,
        task="text-generation",
        device=ComponentDevice.from_str(settings.device) if settings.device else None,
        generation_kwargs={"max_new_tokens": settings.max_new_tokens, "do_sample": False},
    )


def _openai_key(settings: Settings) -> str:
    """The API key; local OpenAI-compatible servers (Ollama, vLLM) accept any placeholder."""
    if settings.llm_api_key:
        return settings.llm_api_key
    if settings.llm_base_url:
        return "unused"
    raise ValueError("--llm openai needs an API key (OPENAI_API_KEY) or a local endpoint (OPENAI_BASE_URL)")


def _add_generation(pipeline: Pipeline, settings: Settings) -> bool:
    """Add ``prompt_builder`` -> ``llm`` to ``pipeline``; False (nothing added) for ``llm="none"``."""
    generator = build_generator(settings)
    if generator is None:
        return False
    prompt_builder = ChatPromptBuilder(
        template=[ChatMessage.from_user(QA_TEMPLATE)], required_variables=["question", "documents"]
    )
    pipeline.add_component("prompt_builder", prompt_builder)
    pipeline.add_component("llm", generator)
    pipeline.connect("prompt_builder.prompt", "llm.messages")
    return True
