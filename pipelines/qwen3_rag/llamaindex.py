"""The pipeline composed with LlamaIndex: a native ``BaseRetriever`` over the shared retrieval
layer, the ``Qwen3Rerank`` postprocessor, ``RichPromptTemplate`` and LlamaIndex LLMs
(``OpenAILike`` for OpenAI-compatible endpoints, ``HuggingFaceLLM`` for local models).

`LlamaIndexStages` is what `RagService` drives stage by stage; `Qwen3RagLlamaIndexRetriever` (the
twin of Haystack's ``Qwen3RagRetriever``) plugs the store into any LlamaIndex query engine, and
`build_query_engine` composes a query engine from it or from any ``BaseRetriever`` of yours (e.g.
``VectorStoreIndex.from_vector_store(ElasticsearchStore(...)).as_retriever()``), with
``Qwen3Rerank`` and the configured LLM.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.llms import LLM, MockLLM
from llama_index.core.prompts import RichPromptTemplate
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.response_synthesizers import BaseSynthesizer, ResponseMode, get_response_synthesizer
from llama_index.core.response_synthesizers.no_text import NoText
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from llama_index.postprocessor.qwen3_rerank import Qwen3Rerank
from qwen3_rerank import Qwen3Reranker
from qwen3_rerank.extras import missing

from .generation import QA_TEMPLATE, ranked_passages_answer, template_documents
from .records import Passage
from .retrieval import HybridRetriever, RetrievalMode, check_retrieval, component_for
from .settings import Settings


class Qwen3RagLlamaIndexRetriever(BaseRetriever):
    """Hybrid (BM25 + dense, RRF), BM25-only or dense-only retrieval from a qwen3-rag store.

    Example:
        >>> retriever = Qwen3RagLlamaIndexRetriever(RagService(Settings.from_env()).retriever, candidates=20)
        >>> retriever.retrieve("boiling point of water")
    """

    def __init__(
        self,
        retriever: HybridRetriever,
        *,
        candidates: int = 20,
        mode: RetrievalMode = "hybrid",
        sources: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        check_retrieval(mode, candidates)
        super().__init__(**kwargs)
        self._hybrid = retriever
        self._candidates = candidates
        self._mode = mode
        self._sources = list(sources) if sources else None

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        passages = self._hybrid.search(query_bundle.query_str, self._candidates, self._mode, self._sources)
        return [passage_to_node(passage) for passage in passages]


class LlamaIndexStages:
    """Reranking and generation with LlamaIndex components, for `RagService`."""

    def __init__(self, settings: Settings, reranker: Qwen3Reranker) -> None:
        self.settings = settings
        self.postprocessor = Qwen3Rerank(reranker=reranker, instruction=settings.instruction)
        self.llm = build_llm(settings)
        self.prompt = RichPromptTemplate(QA_TEMPLATE)

    def rerank(self, question: str, passages: Sequence[Passage], top_n: int) -> list[Passage]:
        # A copy per call shares the loaded reranker and is safe under concurrent asks.
        postprocessor = self.postprocessor.model_copy(update={"top_n": top_n})
        ranked = postprocessor.postprocess_nodes([passage_to_node(p) for p in passages], query_str=question)
        return [node_to_passage(node, rank) for rank, node in enumerate(ranked, start=1)]

    def close(self) -> None:
        self.postprocessor.close()

    def generate(self, question: str, passages: Sequence[Passage]) -> str:
        if self.llm is None or not passages:
            return ranked_passages_answer(passages)
        prompt = self.prompt.format(question=question, documents=template_documents(passages))
        response = self.llm.chat([ChatMessage(role=MessageRole.USER, content=prompt)])
        return (response.message.content or "").strip()


def build_query_engine(
    settings: Settings, retriever: HybridRetriever | BaseRetriever, reranker: Qwen3Reranker
) -> RetrieverQueryEngine:
    """A ``RetrieverQueryEngine``: retriever -> ``Qwen3Rerank`` (``settings.top_n``) -> the LLM of
    ``settings.llm``; with ``llm="none"`` the response holds no text, only the reranked
    ``source_nodes``.

    ``retriever`` is our `HybridRetriever` (wrapped in `Qwen3RagLlamaIndexRetriever`) or any
    LlamaIndex ``BaseRetriever``.

    Example:
        >>> engine = build_query_engine(settings, index.as_retriever(similarity_top_k=20), reranker)
        >>> engine.query("boiling point of water").source_nodes
    """
    retriever = component_for(
        retriever,
        lambda hybrid: Qwen3RagLlamaIndexRetriever(hybrid, candidates=settings.candidates),
        lambda candidate: isinstance(candidate, BaseRetriever),
        "a LlamaIndex BaseRetriever",
    )
    llm = build_llm(settings)
    synthesizer: BaseSynthesizer
    if llm is None:
        # No LLM: no text, and a stand-in LLM so that LlamaIndex never reaches for its default (OpenAI).
        synthesizer = NoText(llm=MockLLM())
    else:
        synthesizer = get_response_synthesizer(
            llm=llm,
            response_mode=ResponseMode.COMPACT,
            text_qa_template=RichPromptTemplate(QA_TEMPLATE_LLAMAINDEX),
        )
    postprocessor = Qwen3Rerank(reranker=reranker, top_n=settings.top_n, instruction=settings.instruction)
    return RetrieverQueryEngine(
        retriever=retriever, response_synthesizer=synthesizer, node_postprocessors=[postprocessor]
    )


# LlamaIndex's synthesizers fill {context_str} and {query_str} (the numbered-citation prompt of
# `LlamaIndexStages` needs the passages one by one, which they do not give).
QA_TEMPLATE_LLAMAINDEX = (
    "Answer the question using only the context below. If it does not contain the answer, say that "
    "you do not know.\n\n{{ context_str }}\n\nQuestion: {{ query_str }}\nAnswer:"
)


def build_llm(settings: Settings) -> LLM | None:
    """LlamaIndex's LLM for ``settings.llm``, or None for none."""
    if settings.llm == "none":
        return None
    if settings.llm == "openai":
        try:
            from llama_index.llms.openai_like import OpenAILike
        except ImportError as error:
            raise missing(error, "--llm openai with LlamaIndex") from error
        return OpenAILike(
            model=settings.llm_model,
            api_base=settings.llm_base_url or "https://api.openai.com/v1",
            api_key=settings.llm_api_key or "unused",
            is_chat_model=True,
            max_tokens=settings.max_new_tokens,
        )
    try:
        from llama_index.llms.huggingface import HuggingFaceLLM
    except ImportError as error:
        raise missing(error, "--llm hf with LlamaIndex") from error
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(settings.llm_model)
    return HuggingFaceLLM(
        model_name=settings.llm_model,
        tokenizer=tokenizer,
        device_map=settings.device or "auto",
        max_new_tokens=settings.max_new_tokens,
        generate_kwargs={"do_sample": False},
        is_chat_model=True,
        messages_to_prompt=lambda messages: _chat_prompt(tokenizer, messages),
    )


def _chat_prompt(tokenizer: Any, messages: Sequence[ChatMessage]) -> str:
    """The model's own chat template, with Qwen3's thinking switched off (as Haystack's
    ``TransformersChatGenerator`` does), so that answers hold no ``<think>`` block."""
    conversation = [{"role": message.role.value, "content": message.content or ""} for message in messages]
    return tokenizer.apply_chat_template(
        conversation, tokenize=False, add_generation_prompt=True, enable_thinking=False
    )


def passage_to_node(passage: Passage) -> NodeWithScore:
    metadata = {**passage.meta, "source": passage.source}
    # The reranker and the LLM read the text alone; metadata stays out of their prompts.
    node = TextNode(
        id_=passage.id,
        text=passage.text,
        metadata=metadata,
        excluded_embed_metadata_keys=list(metadata),
        excluded_llm_metadata_keys=list(metadata),
    )
    return NodeWithScore(node=node, score=passage.score)


def node_to_passage(scored: NodeWithScore, rank: int) -> Passage:
    metadata = dict(scored.node.metadata)
    source = str(metadata.pop("source", ""))
    return Passage(
        scored.node.node_id, scored.node.get_content(), source, float(scored.score or 0.0), rank, metadata
    )
