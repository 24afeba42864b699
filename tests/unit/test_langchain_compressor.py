"""`Qwen3Rerank` behaves like a LangChain document compressor and ranks exactly as the core does."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from haystack import Document as HaystackDocument
from haystack.utils import ComponentDevice
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.vectorstores import InMemoryVectorStore
from llama_index.core.schema import NodeWithScore, TextNode
from pydantic import ValidationError

import qwen3_rerank.reranker
from haystack_integrations.components.rankers.qwen3 import Qwen3Ranker
from langchain_qwen3_rerank import RELEVANCE_SCORE_KEY, Qwen3Rerank
from llama_index.postprocessor.qwen3_rerank import Qwen3Rerank as LlamaIndexQwen3Rerank
from qwen3_rerank import Qwen3Reranker, shared_models
from qwen3_rerank.config import RerankerConfig
from qwen3_rerank.loading import LoadedModel
from tests.model_card_reference import ModelCardReranker

TOLERANCE = 1e-5
QUERY = "How does BM25 rank documents?"
TEXTS = [
    "BM25 ranks documents by term frequency and inverse document frequency.",
    "Paris is the capital of France.",
    "Dense retrievers embed queries and passages into one vector space.",
    "A reranker reads the query and the passage together.",
    "The Eiffel Tower was finished in 1889.",
    "巴黎是法国的首都 — café, naïve 🎉",
]


@pytest.fixture
def model_dir(tiny_qwen3_dir: Path) -> str:
    return str(tiny_qwen3_dir)


@pytest.fixture
def documents() -> list[Document]:
    return [
        Document(page_content=text, id=f"d{index}", metadata={"source": f"doc{index}.txt", "tags": ["a"]})
        for index, text in enumerate(TEXTS)
    ]


@pytest.fixture
def core(model_dir: str) -> Iterator[Qwen3Reranker]:
    with Qwen3Reranker(model_dir, device="cpu") as reranker:
        yield reranker


@pytest.fixture
def load_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts real weight loads (the registry calls `load_model` only on a miss)."""
    calls: list[str] = []
    original = qwen3_rerank.reranker.load_model

    def counting(config: RerankerConfig) -> LoadedModel:
        calls.append(config.model)
        return original(config)

    monkeypatch.setattr(qwen3_rerank.reranker, "load_model", counting)
    return calls


def test_is_a_document_compressor_with_cohere_defaults(model_dir: str) -> None:
    assert issubclass(Qwen3Rerank, BaseDocumentCompressor)
    compressor = Qwen3Rerank(model=model_dir, device="cpu")
    assert (compressor.top_n, compressor.instruction) == (3, None)
    assert (compressor.device, compressor.dtype, compressor.max_length) == ("cpu", "float32", 8192)
    assert compressor.batch_tokens == compressor.reranker.config.batch_tokens


def test_scores_equal_the_model_card(model_dir: str, documents: list[Document]) -> None:
    compressed = Qwen3Rerank(model=model_dir, device="cpu", top_n=None).compress_documents(documents, QUERY)
    reference = ModelCardReranker(model_dir).score(QUERY, TEXTS)
    assert len(compressed) == len(documents)
    for document in compressed:
        position = TEXTS.index(document.page_content)
        assert abs(document.metadata[RELEVANCE_SCORE_KEY] - reference[position]) < TOLERANCE
    scores = [document.metadata[RELEVANCE_SCORE_KEY] for document in compressed]
    assert scores == sorted(scores, reverse=True)
    assert max(scores) - min(scores) > 0.05  # otherwise parity would prove little


def test_returns_the_cores_top_n_as_scored_copies(
    model_dir: str, core: Qwen3Reranker, documents: list[Document]
) -> None:
    compressed = Qwen3Rerank(model=model_dir, device="cpu", top_n=2).compress_documents(documents, QUERY)
    expected = core.rerank(QUERY, TEXTS, top_n=2)
    assert [document.id for document in compressed] == [documents[r.index].id for r in expected]
    assert [document.metadata[RELEVANCE_SCORE_KEY] for document in compressed] == [r.score for r in expected]
    assert all(type(document.metadata[RELEVANCE_SCORE_KEY]) is float for document in compressed)
    original = documents[expected[0].index]
    assert compressed[0].metadata == {**original.metadata, RELEVANCE_SCORE_KEY: expected[0].score}


def test_callers_documents_are_not_mutated(model_dir: str, documents: list[Document]) -> None:
    before = copy.deepcopy(documents)
    compressed = Qwen3Rerank(model=model_dir, device="cpu", top_n=None).compress_documents(documents, QUERY)
    assert documents == before
    compressed[0].metadata["tags"].append("changed")
    assert documents == before
    assert all(out is not original for out in compressed for original in documents)


def test_rerank_has_cohere_reranks_shape(model_dir: str, core: Qwen3Reranker) -> None:
    compressor = Qwen3Rerank(model=model_dir, device="cpu", top_n=2)
    expected = core.rerank(QUERY, TEXTS)
    as_dicts = [{"index": r.index, "relevance_score": r.score} for r in expected]
    assert compressor.rerank(TEXTS, QUERY) == as_dicts[:2]
    assert compressor.rerank([Document(page_content=text) for text in TEXTS], QUERY, top_n=4) == as_dicts[:4]
    assert compressor.rerank(TEXTS, QUERY, top_n=None) == as_dicts


def test_instruction_is_passed_to_the_core(model_dir: str, core: Qwen3Reranker) -> None:
    instruction = "Given a question, retrieve passages that explain ranking functions"
    compressor = Qwen3Rerank(model=model_dir, device="cpu", top_n=None, instruction=instruction)
    scores = [result["relevance_score"] for result in compressor.rerank(TEXTS, QUERY)]
    assert scores == [r.score for r in core.rerank(QUERY, TEXTS, instruction=instruction)]
    assert scores != [r.score for r in core.rerank(QUERY, TEXTS)]


def test_empty_input_gives_empty_output(model_dir: str) -> None:
    compressor = Qwen3Rerank(model=model_dir, device="cpu")
    assert compressor.compress_documents([], QUERY) == []
    assert compressor.rerank([], QUERY) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("top_n", 0), ("max_length", -1), ("batch_tokens", 0), ("window_overlap", -1), ("long_documents", "x")],
)
def test_bad_fields_fail_before_any_model_is_loaded(field: str, value: Any) -> None:
    # The model path does not exist: a ValidationError (not an OSError) proves nothing was loaded.
    with pytest.raises(ValidationError, match=field):
        Qwen3Rerank(model="/no/such/model", **{field: value})


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="top_k"):
        Qwen3Rerank(model="/no/such/model", top_k=3)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c, d: c.compress_documents(d, ""), "query must be a non-empty string"),
        (lambda c, d: c.compress_documents(d, None), "query must be a str"),
        (lambda c, d: c.compress_documents([*d, "plain text"], QUERY), r"documents\[6\] must be a langchain"),
        (lambda c, d: c.compress_documents(d[0], QUERY), "documents must be a sequence"),
        (lambda c, d: c.rerank([1], QUERY), r"documents\[0\] must be a str or a langchain"),
        (lambda c, d: c.rerank(TEXTS, QUERY, top_n=0), "top_n must be a positive int"),
    ],
)
def test_bad_input_names_the_argument(
    model_dir: str, documents: list[Document], call: Any, message: str
) -> None:
    compressor = Qwen3Rerank(model=model_dir, device="cpu")
    with pytest.raises((TypeError, ValueError), match=message):
        call(compressor, documents)


async def test_async_matches_sync_and_scores_off_the_event_loop(
    model_dir: str, documents: list[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    compressor = Qwen3Rerank(model=model_dir, device="cpu", top_n=3)
    expected = compressor.compress_documents(documents, QUERY)
    scoring_threads: list[int] = []
    original = compressor.reranker.rerank

    def spy(*args: Any, **kwargs: Any) -> Any:
        scoring_threads.append(threading.get_ident())
        return original(*args, **kwargs)

    monkeypatch.setattr(compressor.reranker, "rerank", spy)
    assert await compressor.acompress_documents(documents, QUERY) == expected
    assert scoring_threads and threading.get_ident() not in scoring_threads


async def test_async_bad_input_is_an_error(model_dir: str, documents: list[Document]) -> None:
    with pytest.raises(ValueError, match="query"):
        await Qwen3Rerank(model=model_dir, device="cpu").acompress_documents(documents, " ")


@pytest.mark.parametrize("use_async", [False, True])
async def test_works_in_a_contextual_compression_retriever(
    model_dir: str, core: Qwen3Reranker, documents: list[Document], use_async: bool
) -> None:
    store = InMemoryVectorStore(DeterministicFakeEmbedding(size=16))
    store.add_documents(documents)
    base = store.as_retriever(search_kwargs={"k": len(documents)})
    retriever = ContextualCompressionRetriever(
        base_compressor=Qwen3Rerank(model=model_dir, device="cpu", top_n=3), base_retriever=base
    )
    found = await retriever.ainvoke(QUERY) if use_async else retriever.invoke(QUERY)
    candidates = base.invoke(QUERY)
    expected = core.rerank(QUERY, [document.page_content for document in candidates], top_n=3)
    assert [document.id for document in found] == [candidates[r.index].id for r in expected]
    assert [document.metadata[RELEVANCE_SCORE_KEY] for document in found] == [r.score for r in expected]


def test_three_adapters_in_one_process_load_the_model_once(
    model_dir: str, load_calls: list[str], documents: list[Document]
) -> None:
    compressor = Qwen3Rerank(model=model_dir, device="cpu", top_n=3)
    postprocessor = LlamaIndexQwen3Rerank(model=model_dir, device="cpu", top_n=3)
    ranker = Qwen3Ranker(model=model_dir, device=ComponentDevice.from_str("cpu"), top_k=3)
    ranker.warm_up()
    assert load_calls == [model_dir]
    assert ranker.reranker is not None
    assert (
        compressor.reranker.loaded_model
        is postprocessor.reranker.loaded_model
        is ranker.reranker.loaded_model
    )
    assert len(shared_models.keys()) == 1

    from_langchain = compressor.compress_documents(documents, QUERY)
    nodes = [NodeWithScore(node=TextNode(text=d.page_content, id_=d.id)) for d in documents]
    from_llamaindex = postprocessor.postprocess_nodes(nodes, query_str=QUERY)
    haystack_documents = [HaystackDocument(id=d.id, content=d.page_content) for d in documents]
    from_haystack = ranker.run(query=QUERY, documents=haystack_documents)["documents"]
    ranked = [(d.id, d.metadata[RELEVANCE_SCORE_KEY]) for d in from_langchain]
    assert ranked == [(n.node.node_id, n.score) for n in from_llamaindex]
    assert ranked == [(d.id, d.score) for d in from_haystack]


def test_explicit_reranker_is_shared_and_left_open(core: Qwen3Reranker, load_calls: list[str]) -> None:
    compressor = Qwen3Rerank(reranker=core, top_n=2)
    assert compressor.reranker.config == core.config
    assert compressor.reranker.loaded_model is core.loaded_model
    assert (compressor.model, compressor.device) == (core.model_id, "cpu")
    assert load_calls == []  # the core was loaded before the spy; the compressor loads nothing
    compressor.close()
    assert core.score(QUERY, [TEXTS[0]])


def test_explicit_reranker_with_contradicting_settings_is_an_error(core: Qwen3Reranker) -> None:
    with pytest.raises(ValueError, match="max_length=512"):
        Qwen3Rerank(reranker=core, max_length=512)


def test_close_releases_the_weights_it_loaded(model_dir: str) -> None:
    compressor = Qwen3Rerank(model=model_dir, device="cpu")
    assert len(shared_models.keys()) == 1
    compressor.close()
    assert shared_models.keys() == []
