"""The native framework pieces users compose themselves: the Haystack retriever component and
whole Haystack pipeline, and the LlamaIndex retriever inside a LlamaIndex query flow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from haystack import Document, Pipeline, component
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from llama_index.postprocessor.qwen3_rerank import Qwen3Rerank
from qwen3_rag import RagService
from qwen3_rag.haystack import Qwen3RagRetriever as HaystackRetriever
from qwen3_rag.haystack import build_pipeline
from qwen3_rag.llamaindex import Qwen3RagLlamaIndexRetriever as LlamaIndexRetriever
from qwen3_rag.llamaindex import build_query_engine
from qwen3_rag.testing import SAMPLES_DIR, offline_settings


@pytest.fixture
def service(tmp_path: Path, tiny_qwen3_dir: Path) -> Iterator[RagService]:
    with RagService(offline_settings(tmp_path, reranker_model=str(tiny_qwen3_dir))) as service:
        service.index_paths([SAMPLES_DIR])
        yield service


@pytest.mark.parametrize("mode", ["hybrid", "bm25", "dense"])
def test_haystack_retriever_returns_documents_of_its_mode(service: RagService, mode: str) -> None:
    retriever = HaystackRetriever(service.retriever, top_k=4, mode=mode)
    documents = retriever.run(query="Olympus Mons volcano on Mars")["documents"]
    expected = {
        "hybrid": service.retriever.retrieve("Olympus Mons volcano on Mars", 4).fused,
        "bm25": service.retriever.bm25("Olympus Mons volcano on Mars", 4),
        "dense": service.retriever.dense("Olympus Mons volcano on Mars", 4),
    }[mode]
    assert [d.id for d in documents] == [p.id for p in expected]
    assert documents[0].meta["source"].endswith("solar_system.md")


def test_haystack_retriever_filters_by_source(service: RagService) -> None:
    water = f"{SAMPLES_DIR.name}/water.md"  # as `index` names a file of the folder it was given
    documents = HaystackRetriever(service.retriever, top_k=5).run(query="water", sources=[water])["documents"]
    assert documents and {d.meta["source"] for d in documents} == {water}


def test_a_whole_haystack_pipeline_retrieves_and_reranks(service: RagService) -> None:
    pipeline = build_pipeline(service.settings, service.retriever, service.reranker)
    assert isinstance(pipeline, Pipeline)
    question = "How many bones does an adult have?"
    result = pipeline.run({"retriever": {"query": question}, "ranker": {"query": question}})
    documents = result["ranker"]["documents"]
    assert len(documents) == service.settings.top_n
    assert [d.score for d in documents] == sorted((d.score for d in documents), reverse=True)


def test_llamaindex_retriever_feeds_the_qwen3_postprocessor(service: RagService) -> None:
    retriever = LlamaIndexRetriever(service.retriever, candidates=6)
    nodes = retriever.retrieve("Who first walked on the Moon?")
    assert len(nodes) == 6
    assert nodes[0].node.metadata["source"].endswith(".md") or nodes[0].node.metadata["source"].endswith(
        ".html"
    )
    rerank = Qwen3Rerank(reranker=service.reranker, top_n=2)
    ranked = rerank.postprocess_nodes(nodes, query_bundle=QueryBundle("Who first walked on the Moon?"))
    assert len(ranked) == 2 and ranked[0].score >= ranked[1].score
    assert {n.node.node_id for n in ranked} <= {n.node.node_id for n in nodes}


def test_retrievers_refuse_an_unknown_mode(service: RagService) -> None:
    with pytest.raises(ValueError, match="mode must be"):
        HaystackRetriever(service.retriever, mode="sparse")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode must be"):
        LlamaIndexRetriever(service.retriever, mode="sparse")  # type: ignore[arg-type]


def test_a_haystack_pipeline_with_the_retriever_round_trips_through_yaml(service: RagService) -> None:
    settings = service.settings.replace(es_password="hunter2")
    pipeline = Pipeline()
    pipeline.add_component("retriever", HaystackRetriever(settings=settings, top_k=3, mode="hybrid"))
    text = pipeline.dumps()
    assert "hunter2" not in text, "secrets are read from the environment, never serialised"
    assert "haystack_integrations.components.retrievers.qwen3_rag" in text
    restored = Pipeline.loads(text)  # no allow-list: the component lives under haystack_integrations
    query = {"retriever": {"query": "Olympus Mons volcano"}}
    documents = restored.run(query)["retriever"]["documents"]
    assert [d.id for d in documents] == [d.id for d in pipeline.run(query)["retriever"]["documents"]]
    assert len(documents) == 3


def test_the_haystack_retriever_needs_settings_or_a_retriever(service: RagService) -> None:
    with pytest.raises(ValueError, match="exactly one of retriever="):
        HaystackRetriever()
    with pytest.raises(ValueError, match="exactly one of retriever="):
        HaystackRetriever(service.retriever, settings=service.settings)


PASSAGES = [
    "Octopuses have three hearts.",
    "Water boils at 100 degrees Celsius at sea level.",
    "Mount Everest is the highest mountain.",
]


@component
class FixedRetriever:
    """A user's own Haystack retriever (stands in for e.g. ElasticsearchHybridRetriever)."""

    @component.output_types(documents=list[Document])
    def run(self, query: str) -> dict[str, list[Document]]:
        return {"documents": [Document(id=str(i), content=text) for i, text in enumerate(PASSAGES)]}


class FixedLlamaIndexRetriever(BaseRetriever):
    """A user's own LlamaIndex retriever (stands in for an ElasticsearchStore index's retriever)."""

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [NodeWithScore(node=TextNode(id_=str(i), text=t), score=0.0) for i, t in enumerate(PASSAGES)]


def test_the_haystack_pipeline_takes_any_retriever_component(service: RagService) -> None:
    settings = service.settings.replace(top_n=2)
    pipeline = build_pipeline(settings, FixedRetriever(), service.reranker)
    question = "How many hearts does an octopus have?"
    documents = pipeline.run({"retriever": {"query": question}, "ranker": {"query": question}})["ranker"][
        "documents"
    ]
    expected = service.reranker.rerank(question, PASSAGES, top_n=2)
    assert [d.content for d in documents] == [r.document for r in expected]


def test_the_haystack_pipeline_refuses_a_retriever_that_is_not_a_component(service: RagService) -> None:
    with pytest.raises(TypeError, match="Haystack component with a 'documents' output"):
        build_pipeline(service.settings, object(), service.reranker)


def test_the_llamaindex_query_engine_takes_any_base_retriever(service: RagService) -> None:
    settings = service.settings.replace(top_n=2)
    engine = build_query_engine(settings, FixedLlamaIndexRetriever(), service.reranker)
    question = "How many hearts does an octopus have?"
    nodes = engine.query(question).source_nodes
    expected = service.reranker.rerank(question, PASSAGES, top_n=2)
    assert [n.node.get_content() for n in nodes] == [r.document for r in expected]
    with pytest.raises(TypeError, match="LlamaIndex BaseRetriever"):
        build_query_engine(settings, object(), service.reranker)  # type: ignore[arg-type]


def test_the_llamaindex_query_engine_wraps_our_retriever(service: RagService) -> None:
    engine = build_query_engine(service.settings, service.retriever, service.reranker)
    nodes = engine.query("Who first walked on the Moon?").source_nodes
    assert len(nodes) == service.settings.top_n
