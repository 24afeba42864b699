"""Indices written by the official Elasticsearch integrations of Haystack and LlamaIndex, read by
`ask` (with either framework) and `eval` as they are; and the error for an index none fits."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
from elasticsearch import Elasticsearch
from typer.testing import CliRunner

from qwen3_rag import RagService, StoreError
from qwen3_rag.beir import load_beir
from qwen3_rag.evaluation import run_evaluation
from qwen3_rag.settings import Settings
from qwen3_rag.testing import SAMPLES_DIR, minilm_model_dir, offline_settings
from qwen3_rerank.cli import full_app

pytestmark = pytest.mark.integration

BEIR_DIR = SAMPLES_DIR.parent / "samples_beir"
QUESTION = "How hot must water get before it boils on a mountain top?"
EXPECTED = "water-0"  # what the BEIR qrels judge relevant for QUESTION


def write_with_haystack(es_url: str, index: str) -> None:
    """The corpus as a Haystack user indexes it: embedder -> DocumentWriter -> ElasticsearchDocumentStore."""
    from haystack import Document, Pipeline
    from haystack.components.writers import DocumentWriter
    from haystack_integrations.components.embedders.sentence_transformers import (
        SentenceTransformersDocumentEmbedder,
    )
    from haystack_integrations.document_stores.elasticsearch import ElasticsearchDocumentStore

    corpus = load_beir(BEIR_DIR).corpus
    documents = [Document(content=text, meta={"file_path": doc_id}) for doc_id, text in corpus.items()]
    pipeline = Pipeline()
    embedder = SentenceTransformersDocumentEmbedder(model=str(minilm_model_dir()), device=None)
    pipeline.add_component("embedder", embedder)
    store = ElasticsearchDocumentStore(hosts=es_url, index=index)
    pipeline.add_component("writer", DocumentWriter(document_store=store))
    pipeline.connect("embedder.documents", "writer.documents")
    pipeline.run({"embedder": {"documents": documents}})
    store.client.indices.refresh(index=index)


def write_with_llamaindex(es_url: str, index: str) -> None:
    """The corpus as a LlamaIndex user indexes it: VectorStoreIndex over ElasticsearchStore."""
    from llama_index.core import Document, StorageContext, VectorStoreIndex
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.elasticsearch import ElasticsearchStore

    corpus = load_beir(BEIR_DIR).corpus
    documents = [Document(text=text, metadata={"file_path": doc_id}) for doc_id, text in corpus.items()]
    vector_store = ElasticsearchStore(es_url=es_url, index_name=index)
    VectorStoreIndex.from_documents(
        documents,
        storage_context=StorageContext.from_defaults(vector_store=vector_store),
        embed_model=HuggingFaceEmbedding(model_name=str(minilm_model_dir()), device="cpu"),
    )
    client = Elasticsearch(es_url)
    client.indices.refresh(index=index)
    client.close()


WRITERS: dict[str, Callable[[str, str], None]] = {
    "haystack": write_with_haystack,
    "llamaindex": write_with_llamaindex,
}


@dataclass(frozen=True)
class ForeignIndex:
    writer: str
    name: str


@pytest.fixture(scope="module", params=sorted(WRITERS))
def foreign_index(request: pytest.FixtureRequest, es_url: str) -> Iterator[ForeignIndex]:
    """An index written once per module by one official integration (the parameter names which);
    the tests only read it."""
    name = f"qwen3-rag-byo-{request.param}-{uuid.uuid4().hex[:8]}"
    WRITERS[request.param](es_url, name)
    yield ForeignIndex(request.param, name)
    client = Elasticsearch(es_url)
    client.indices.delete(index=name, ignore_unavailable=True)
    client.close()


@pytest.fixture
def settings(tmp_path: Path, tiny_qwen3_dir: Path, es_url: str, foreign_index: ForeignIndex) -> Settings:
    return offline_settings(
        tmp_path,
        backend="elasticsearch",
        es_url=es_url,
        index_name=foreign_index.name,
        reranker_model=str(tiny_qwen3_dir),
    )


@pytest.fixture
def app() -> typer.Typer:
    """The real ``qwen3-rerank`` app, with its one-line error reporting."""
    return full_app()


def test_ask_with_both_frameworks_on_an_index_an_integration_wrote(
    foreign_index: ForeignIndex, app: typer.Typer, cli_env: dict[str, str]
) -> None:
    env = cli_env | {"QWEN3_RAG_INDEX": foreign_index.name}
    passages = {}
    for framework in ("haystack", "llamaindex"):
        args = ["ask", QUESTION, "--framework", framework, "--candidates", "8", "--top-n", "3", "--json"]
        result = CliRunner().invoke(app, args, env=env)
        assert result.exit_code == 0, result.output
        answer = json.loads(result.stdout)
        passages[framework] = answer["passages"]
        assert answer["stages"]["bm25"][0]["source"] == EXPECTED
        assert answer["stages"]["dense"][0]["source"] == EXPECTED
    assert len(passages["haystack"]) == 3
    assert passages["haystack"] == passages["llamaindex"]
    assert all(passage["text"] and passage["source"] for passage in passages["haystack"])


def test_sources_filter_both_searches_on_the_integrations_source_key(settings: Settings) -> None:
    with RagService(settings) as service:
        retrieval = service.retriever.retrieve(QUESTION, 8, sources=["water-1", "animals-0"])
    assert {p.source for p in retrieval.bm25 + retrieval.dense} == {"water-1", "animals-0"}


def test_eval_on_an_index_an_integration_wrote_leaves_it_unchanged(settings: Settings, es_url: str) -> None:
    client = Elasticsearch(es_url)
    before = client.count(index=settings.index_name)["count"]
    result = run_evaluation(BEIR_DIR, settings, stages=["bm25", "dense", "hybrid", "rerank"])
    after = client.count(index=settings.index_name)["count"]
    client.close()
    assert before == after == 34
    assert result.queries == 28
    # MiniLM finds most judged passages first on this small corpus; BM25 (stand-in or not) some.
    assert result.metrics["dense"]["nDCG@10"] > 0.5
    assert result.metrics["bm25"]["nDCG@10"] > 0.3
    assert result.metrics["hybrid"]["R@100"] == pytest.approx(1.0)


def test_indexing_into_an_index_an_integration_wrote_is_refused(settings: Settings) -> None:
    with RagService(settings) as service, pytest.raises(StoreError, match="reads but does not write"):
        service.index_paths([SAMPLES_DIR / "water.md"])


def test_explicit_layout_that_does_not_fit_is_one_clear_error(settings: Settings) -> None:
    with (
        RagService(settings.replace(index_layout="qwen3")) as service,
        pytest.raises(StoreError, match=r"no text field 'text'.*index_layout"),
    ):
        service.ask(QUESTION)


def test_an_index_no_layout_fits_names_the_missing_field_and_the_option(
    app: typer.Typer, es_url: str, index_name: str, cli_env: dict[str, str]
) -> None:
    client = Elasticsearch(es_url)
    client.indices.create(
        index=index_name,
        mappings={
            "properties": {
                "body": {"type": "text"},
                "vector": {"type": "dense_vector", "dims": 384, "index": True, "similarity": "cosine"},
            }
        },
    )
    client.index(index=index_name, document={"body": "Water boils at 100 °C.", "vector": [0.05] * 384})
    client.indices.refresh(index=index_name)
    client.close()
    result = CliRunner().invoke(app, ["ask", QUESTION], env=cli_env | {"COLUMNS": "300"})
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "matches no known layout" in message
    assert "no text field 'text' (qwen3-rag) or 'content'" in message
    assert "QWEN3_RAG_INDEX_LAYOUT" in message
    assert "Traceback" not in result.output


def test_the_server_answers_from_an_index_an_integration_wrote(
    settings: Settings, tiny_qwen3_dir: Path
) -> None:
    from qwen3_rag.server import ServerSettings, create_app
    from qwen3_rerank import Qwen3Reranker
    from tests.server_client import LocalTestClient as TestClient

    def pipeline(server_settings: ServerSettings, reranker: Qwen3Reranker) -> RagService:
        return RagService(settings, reranker=reranker)

    with Qwen3Reranker(str(tiny_qwen3_dir), device="cpu") as reranker:
        app = create_app(ServerSettings(rag="on"), reranker=reranker, rag_factory=pipeline)
        with TestClient(app) as client:
            answer = client.post("/v1/ask", json={"question": QUESTION, "top_n": 3})
    assert answer.status_code == 200, answer.text
    passages = answer.json()["passages"]
    assert [p["rank"] for p in passages] == [1, 2, 3]
    assert all(p["text"] and p["source"] for p in passages)
