"""The pipeline composed with Haystack: a native retriever component over the shared retrieval
layer, the ``Qwen3Ranker`` adapter, ``ChatPromptBuilder`` and Haystack's chat generators.

`HaystackPipeline` is what `RagService` drives stage by stage (to time and show each stage);
`build_pipeline` connects the same components into one ``haystack.Pipeline`` for users who want
to extend it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from haystack import Document, Pipeline, component, default_from_dict, default_to_dict
from haystack.components.builders import ChatPromptBuilder
from haystack.dataclasses import ChatMessage
from haystack.utils import ComponentDevice, Secret

from haystack_integrations.components.rankers.qwen3 import Qwen3Ranker
from qwen3_rerank import Qwen3Reranker
from qwen3_rerank.config import check_positive

from .embedding import Embedder
from .generation import QA_TEMPLATE, ranked_passages_answer, template_documents
from .records import Passage
from .retrieval import HybridRetriever
from .settings import Settings
from .stores import open_store

RetrievalMode = Literal["hybrid", "bm25", "dense"]


@component
class Qwen3RagRetriever:
    """Hybrid (BM25 + dense, RRF), BM25-only or dense-only retrieval from a qwen3-rag store.

    Usage example:
        ```python
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
        if mode not in ("hybrid", "bm25", "dense"):
            raise ValueError(f"mode must be 'hybrid', 'bm25' or 'dense'; got {mode!r}")
        check_positive("top_k", top_k)
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
        top_k = top_k or self.top_k
        if self.mode == "bm25":
            passages = self._retriever.bm25(query, top_k, sources)
        elif self.mode == "dense":
            passages = self._retriever.dense(query, top_k, sources)
        else:
            passages = self._retriever.retrieve(query, top_k, sources).fused
        return {"documents": [to_document(passage) for passage in passages]}


class HaystackPipeline:
    """Reranking and generation with Haystack components, for `RagService`."""

    def __init__(self, settings: Settings, reranker: Qwen3Reranker) -> None:
        self.settings = settings
        self.ranker = Qwen3Ranker(reranker=reranker, top_k=settings.top_n, instruction=settings.instruction)
        self.generation = _generation_pipeline(settings)

    def rerank(self, question: str, passages: Sequence[Passage], top_n: int) -> list[Passage]:
        documents = [to_document(passage) for passage in passages]
        ranked = self.ranker.run(query=question, documents=documents, top_k=top_n)["documents"]
        return [to_passage(document, rank) for rank, document in enumerate(ranked, start=1)]

    def close(self) -> None:
        self.ranker.close()

    def generate(self, question: str, passages: Sequence[Passage]) -> str:
        if self.generation is None or not passages:
            return ranked_passages_answer(passages)
        data = {"prompt_builder": {"question": question, "documents": template_documents(passages)}}
        replies = self.generation.run(data)["llm"]["replies"]
        return (replies[0].text or "") if replies else ""


def build_pipeline(settings: Settings, retriever: HybridRetriever, reranker: Qwen3Reranker) -> Pipeline:
    """One ``haystack.Pipeline``: retriever -> Qwen3Ranker -> ChatPromptBuilder -> generator
    (the generator steps are left out with ``llm="none"``).

    Example:
        >>> pipeline = build_pipeline(settings, service.retriever, service.reranker)
        >>> q = "boiling point of water"
        >>> data = {"retriever": {"query": q}, "ranker": {"query": q}, "prompt_builder": {"question": q}}
        >>> pipeline.run(data)
    """
    pipeline = Pipeline()
    pipeline.add_component("retriever", Qwen3RagRetriever(retriever, top_k=settings.candidates))
    pipeline.add_component(
        "ranker", Qwen3Ranker(reranker=reranker, top_k=settings.top_n, instruction=settings.instruction)
    )
    pipeline.connect("retriever.documents", "ranker.documents")
    generator = build_generator(settings)
    if generator is not None:
        pipeline.add_component("prompt_builder", _prompt_builder())
        pipeline.add_component("llm", generator)
        pipeline.connect("ranker.documents", "prompt_builder.documents")
        pipeline.connect("prompt_builder.prompt", "llm.messages")
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
        raise ImportError(
            "--llm hf with Haystack needs transformers-haystack: pip install transformers-haystack"
        ) from error
    return TransformersChatGenerator(
        model=settings.llm_model,
        task="text-generation",
        device=ComponentDevice.from_str(settings.device) if settings.device else None,
        generation_kwargs={"max_new_tokens": settings.max_new_tokens, "do_sample": False},
    )


def to_document(passage: Passage) -> Document:
    return Document(
        id=passage.id,
        content=passage.text,
        score=passage.score,
        meta={**passage.meta, "source": passage.source},
    )


def to_passage(document: Document, rank: int) -> Passage:
    meta = dict(document.meta)
    source = str(meta.pop("source", ""))
    return Passage(document.id, document.content or "", source, float(document.score or 0.0), rank, meta)


def _openai_key(settings: Settings) -> str:
    """The API key; local OpenAI-compatible servers (Ollama, vLLM) accept any placeholder."""
    if settings.llm_api_key:
        return settings.llm_api_key
    if settings.llm_base_url:
        return "unused"
    raise ValueError("--llm openai needs an API key (OPENAI_API_KEY) or a local endpoint (OPENAI_BASE_URL)")


def _prompt_builder() -> ChatPromptBuilder:
    return ChatPromptBuilder(
        template=[ChatMessage.from_user(QA_TEMPLATE)], required_variables=["question", "documents"]
    )


def _generation_pipeline(settings: Settings) -> Pipeline | None:
    generator = build_generator(settings)
    if generator is None:
        return None
    pipeline = Pipeline()
    pipeline.add_component("prompt_builder", _prompt_builder())
    pipeline.add_component("llm", generator)
    pipeline.connect("prompt_builder.prompt", "llm.messages")
    return pipeline
