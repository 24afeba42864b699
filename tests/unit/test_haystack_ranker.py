"""`Qwen3Ranker` behaves like a Haystack ranker and ranks exactly as the core does."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import haystack
import pytest
import torch
from haystack import Document, Pipeline
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack.utils import ComponentDevice, Secret

from haystack_integrations.components.rankers.qwen3 import Qwen3Ranker
from qwen3_rerank import DEFAULT_MODEL, Qwen3Reranker, shared_models

QUERY = "How does BM25 rank documents?"
TEXTS = [
    "BM25 ranks documents by term frequency and inverse document frequency.",
    "BM25 is a bag-of-words function; it ignores word order.",
    "Dense retrievers embed documents into one vector space, unlike BM25.",
    "A reranker reads the query and the documents together.",
    "The Eiffel Tower was finished in 1889.",
    "Reciprocal rank fusion merges ranked lists of documents.",
]
TYPE = "haystack_integrations.components.rankers.qwen3.ranker.Qwen3Ranker"


@pytest.fixture
def model_dir(tiny_qwen3_dir: Path) -> str:
    return str(tiny_qwen3_dir)


@pytest.fixture
def cpu() -> ComponentDevice:
    return ComponentDevice.from_str("cpu")


@pytest.fixture
def documents() -> list[Document]:
    return [Document(content=text, meta={"title": f"Doc {index}"}) for index, text in enumerate(TEXTS)]


@pytest.fixture
def core(model_dir: str) -> Iterator[Qwen3Reranker]:
    with Qwen3Reranker(model_dir, device="cpu") as reranker:
        yield reranker


def spy_on_rerank(ranker: Qwen3Ranker, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record what the component hands to the core, and from which thread."""
    calls: list[dict[str, Any]] = []
    assert ranker.reranker is not None
    original = ranker.reranker.rerank

    def spy(query: str, documents: list[str], **kwargs: Any) -> Any:
        calls.append({"documents": list(documents), "thread": threading.get_ident(), **kwargs})
        return original(query, documents, **kwargs)

    monkeypatch.setattr(ranker.reranker, "rerank", spy)
    return calls


def test_init_defaults() -> None:
    ranker = Qwen3Ranker()
    assert ranker.model == DEFAULT_MODEL
    assert ranker.top_k == 10
    assert ranker.token == Secret.from_env_var(["HF_API_TOKEN", "HF_TOKEN"], strict=False)
    assert ranker.device == ComponentDevice.resolve_device(None)
    assert (ranker.instruction, ranker.score_threshold, ranker.model_kwargs) == (None, None, None)
    assert (ranker.meta_fields_to_embed, ranker.embedding_separator) == ([], "\n")
    assert (ranker.max_length, ranker.batch_tokens, ranker.long_documents) == (8192, None, "truncate")
    assert ranker.reranker is None  # nothing is loaded before warm_up
    assert ranker._get_telemetry_data() == {"model": DEFAULT_MODEL}


@pytest.mark.parametrize("top_k", [0, -3, 2.5, True])
def test_init_rejects_a_bad_top_k(top_k: Any) -> None:
    with pytest.raises(ValueError, match="top_k"):
        Qwen3Ranker(top_k=top_k)


def test_init_rejects_unsupported_model_kwargs() -> None:
    with pytest.raises(ValueError, match=r"model_kwargs.*trust_remote_code"):
        Qwen3Ranker(model_kwargs={"trust_remote_code": True})


def test_loading_errors_surface_in_warm_up_not_init() -> None:
    ranker = Qwen3Ranker(model="/no/such/model", device=ComponentDevice.from_str("cpu"))
    with pytest.raises(OSError, match="/no/such/model"):
        ranker.warm_up()


def test_to_dict_serializes_device_secret_and_dtype() -> None:
    ranker = Qwen3Ranker(
        model="some/model",
        device=ComponentDevice.from_str("cuda:1"),
        token=Secret.from_env_var("MY_HF_TOKEN"),
        top_k=3,
        instruction="Find the clause",
        score_threshold=0.25,
        meta_fields_to_embed=["title"],
        embedding_separator=" | ",
        max_length=1024,
        batch_tokens=2048,
        long_documents="window",
        window_overlap=64,
        model_kwargs={"dtype": torch.bfloat16, "revision": "main"},
    )
    assert ranker.to_dict() == {
        "type": TYPE,
        "init_parameters": {
            "model": "some/model",
            "device": {"type": "single", "device": "cuda:1"},
            "token": {"type": "env_var", "env_vars": ["MY_HF_TOKEN"], "strict": True},
            "top_k": 3,
            "instruction": "Find the clause",
            "score_threshold": 0.25,
            "meta_fields_to_embed": ["title"],
            "embedding_separator": " | ",
            "max_length": 1024,
            "batch_tokens": 2048,
            "long_documents": "window",
            "window_overlap": 64,
            "model_kwargs": {"dtype": "torch.bfloat16", "revision": "main"},
        },
    }
    assert ranker.model_kwargs == {"dtype": torch.bfloat16, "revision": "main"}  # not mutated


def test_from_dict_restores_an_equal_component() -> None:
    ranker = Qwen3Ranker(
        device=ComponentDevice.from_str("cuda:1"),
        token=Secret.from_env_var("MY_HF_TOKEN"),
        top_k=None,
        model_kwargs={"torch_dtype": torch.float16},
    )
    restored = Qwen3Ranker.from_dict(ranker.to_dict())
    assert restored.device == ComponentDevice.from_str("cuda:1")
    assert restored.token == Secret.from_env_var("MY_HF_TOKEN")
    assert restored.model_kwargs == {"torch_dtype": torch.float16}
    assert restored.top_k is None
    assert restored.to_dict() == ranker.to_dict()


def test_pipeline_yaml_round_trip() -> None:
    pipeline = Pipeline()
    pipeline.add_component("ranker", Qwen3Ranker(top_k=4, model_kwargs={"dtype": torch.bfloat16}))
    yaml = pipeline.dumps()
    assert TYPE in yaml
    restored = Pipeline.loads(yaml)  # no allowlist set-up: haystack_integrations is trusted
    assert restored.get_component("ranker").to_dict() == pipeline.get_component("ranker").to_dict()


def test_warm_up_is_idempotent(model_dir: str, cpu: ComponentDevice) -> None:
    ranker = Qwen3Ranker(model=model_dir, device=cpu)
    ranker.warm_up()
    first = ranker.reranker
    ranker.warm_up()
    assert ranker.reranker is first
    assert len(shared_models.keys()) == 1


def test_run_warms_up_when_needed(model_dir: str, cpu: ComponentDevice, documents: list[Document]) -> None:
    ranker = Qwen3Ranker(model=model_dir, device=cpu)
    assert len(ranker.run(query=QUERY, documents=documents)["documents"]) == len(documents)
    assert ranker.reranker is not None


def test_model_kwargs_dtype_reaches_the_core(model_dir: str, cpu: ComponentDevice) -> None:
    for kwargs in ({"dtype": torch.bfloat16}, {"torch_dtype": "torch.bfloat16"}, {"dtype": "bfloat16"}):
        ranker = Qwen3Ranker(model=model_dir, device=cpu, model_kwargs=kwargs)
        ranker.warm_up()
        assert ranker.reranker is not None and ranker.reranker.config.dtype == torch.bfloat16
        ranker.close()


def test_empty_input_gives_empty_output(model_dir: str, cpu: ComponentDevice) -> None:
    assert Qwen3Ranker(model=model_dir, device=cpu).run(query=QUERY, documents=[]) == {"documents": []}


def test_ranks_as_the_core_with_python_float_scores(
    model_dir: str, cpu: ComponentDevice, core: Qwen3Reranker, documents: list[Document]
) -> None:
    result = Qwen3Ranker(model=model_dir, device=cpu, top_k=4).run(query=QUERY, documents=documents)
    expected = core.rerank(QUERY, TEXTS, top_n=4)
    assert [d.id for d in result["documents"]] == [documents[r.index].id for r in expected]
    assert [d.score for d in result["documents"]] == [r.score for r in expected]
    assert all(type(d.score) is float for d in result["documents"])
    assert all(d.score is None for d in documents)  # inputs untouched


def test_meta_fields_are_embedded_with_the_separator(
    model_dir: str, cpu: ComponentDevice, monkeypatch: pytest.MonkeyPatch
) -> None:
    ranker = Qwen3Ranker(model=model_dir, device=cpu, meta_fields_to_embed=["title", "year", "empty"])
    ranker.warm_up()
    calls = spy_on_rerank(ranker, monkeypatch)
    document = Document(content="BM25 explained.", meta={"title": "Okapi", "year": 1994, "empty": ""})
    ranker.run(query=QUERY, documents=[document])
    assert calls[0]["documents"] == ["Okapi\n1994\nBM25 explained."]


def test_documents_without_content_are_kept_and_named_in_a_warning(
    model_dir: str, cpu: ComponentDevice, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    ranker = Qwen3Ranker(model=model_dir, device=cpu, meta_fields_to_embed=["title"])
    ranker.warm_up()
    calls = spy_on_rerank(ranker, monkeypatch)
    blank = Document(content=None, meta={"title": "Only a title"})
    with caplog.at_level(logging.WARNING):
        result = ranker.run(query=QUERY, documents=[Document(content="BM25 explained."), blank])
    assert blank.id in [d.id for d in result["documents"]]
    assert calls[0]["documents"][1] == "Only a title"
    assert blank.id in caplog.text


def test_duplicates_keep_the_best_incoming_score(
    model_dir: str, cpu: ComponentDevice, documents: list[Document]
) -> None:
    worse = Document(id="same", content=TEXTS[0], score=0.2, meta={"copy": "worse"})
    better = Document(id="same", content=TEXTS[0], score=0.9, meta={"copy": "better"})
    result = Qwen3Ranker(model=model_dir, device=cpu).run(
        query=QUERY, documents=[worse, *documents[1:], better]
    )
    kept = [d for d in result["documents"] if d.id == "same"]
    assert len(result["documents"]) == len(documents)
    assert [d.meta["copy"] for d in kept] == ["better"]


def test_score_threshold_applies_before_top_k(
    model_dir: str, cpu: ComponentDevice, core: Qwen3Reranker, documents: list[Document]
) -> None:
    scores = sorted(core.score(QUERY, TEXTS), reverse=True)
    ranker = Qwen3Ranker(model=model_dir, device=cpu, top_k=5, score_threshold=scores[2])
    assert [d.score for d in ranker.run(query=QUERY, documents=documents)["documents"]] == scores[:3]


def test_run_arguments_override_init_even_when_falsy(
    model_dir: str, cpu: ComponentDevice, documents: list[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    ranker = Qwen3Ranker(
        model=model_dir, device=cpu, top_k=1, score_threshold=1.5, instruction="Init instruction"
    )
    ranker.warm_up()
    calls = spy_on_rerank(ranker, monkeypatch)
    assert ranker.run(query=QUERY, documents=documents)["documents"] == []  # nothing reaches 1.5
    result = ranker.run(query=QUERY, documents=documents, top_k=3, score_threshold=0.0, instruction="")
    assert len(result["documents"]) == 3
    assert [call["instruction"] for call in calls] == ["Init instruction", ""]


@pytest.mark.parametrize("top_k", [0, -1])
def test_run_rejects_a_bad_top_k(
    model_dir: str, cpu: ComponentDevice, documents: list[Document], top_k: int
) -> None:
    with pytest.raises(ValueError, match="top_k"):
        Qwen3Ranker(model=model_dir, device=cpu).run(query=QUERY, documents=documents, top_k=top_k)


def test_blank_query_is_an_error(model_dir: str, cpu: ComponentDevice, documents: list[Document]) -> None:
    with pytest.raises(ValueError, match="query"):
        Qwen3Ranker(model=model_dir, device=cpu).run(query="  ", documents=documents)


async def test_run_async_matches_run_and_scores_off_the_event_loop(
    model_dir: str, cpu: ComponentDevice, documents: list[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    ranker = Qwen3Ranker(model=model_dir, device=cpu, top_k=3)
    expected = ranker.run(query=QUERY, documents=documents)["documents"]
    calls = spy_on_rerank(ranker, monkeypatch)
    result = await ranker.run_async(query=QUERY, documents=documents)
    assert [(d.id, d.score) for d in result["documents"]] == [(d.id, d.score) for d in expected]
    assert calls and calls[0]["thread"] != threading.get_ident()


def test_in_a_pipeline_after_bm25_ranks_as_the_core(
    model_dir: str, cpu: ComponentDevice, core: Qwen3Reranker, documents: list[Document]
) -> None:
    store = InMemoryDocumentStore()
    store.write_documents(documents)
    pipeline = Pipeline()
    pipeline.add_component("retriever", InMemoryBM25Retriever(document_store=store, top_k=5))
    pipeline.add_component("ranker", Qwen3Ranker(model=model_dir, device=cpu, top_k=3))
    pipeline.connect("retriever.documents", "ranker.documents")

    result = pipeline.run({"retriever": {"query": QUERY}, "ranker": {"query": QUERY}})

    candidates = InMemoryBM25Retriever(document_store=store, top_k=5).run(query=QUERY)["documents"]
    expected = core.rerank(QUERY, [d.content for d in candidates], top_n=3)
    ranked = result["ranker"]["documents"]
    assert [d.id for d in ranked] == [candidates[r.index].id for r in expected]
    assert [d.score for d in ranked] == [r.score for r in expected]
    assert all(type(d.score) is float for d in ranked)


# Haystack 2.x runs pipelines asynchronously with AsyncPipeline; in 3.x, Pipeline has run_async.
AsyncPipeline = getattr(haystack, "AsyncPipeline", Pipeline)


def bm25_then_qwen3(store: InMemoryDocumentStore, model_dir: str, pipeline: Any) -> Any:
    pipeline.add_component("retriever", InMemoryBM25Retriever(document_store=store, top_k=5))
    ranker = Qwen3Ranker(model=model_dir, device=ComponentDevice.from_str("cpu"), top_k=3)
    pipeline.add_component("ranker", ranker)
    pipeline.connect("retriever.documents", "ranker.documents")
    return pipeline


async def test_in_an_async_pipeline_ranks_as_in_a_sync_one(model_dir: str, documents: list[Document]) -> None:
    store = InMemoryDocumentStore()
    store.write_documents(documents)
    inputs = {"retriever": {"query": QUERY}, "ranker": {"query": QUERY}}
    synchronous = bm25_then_qwen3(store, model_dir, Pipeline()).run(inputs)
    asynchronous = await bm25_then_qwen3(store, model_dir, AsyncPipeline()).run_async(inputs)
    ranked = [[(d.id, d.score) for d in out["ranker"]["documents"]] for out in (synchronous, asynchronous)]
    assert ranked[0] == ranked[1]
    assert len(ranked[0]) == 3


def test_close_releases_the_weights_and_run_reloads(
    model_dir: str, cpu: ComponentDevice, documents: list[Document]
) -> None:
    ranker = Qwen3Ranker(model=model_dir, device=cpu)
    ranker.warm_up()
    ranker.close()
    assert shared_models.keys() == []
    assert ranker.run(query=QUERY, documents=documents)["documents"]


def test_explicit_reranker_is_used_serialized_by_settings_and_left_open(
    core: Qwen3Reranker, documents: list[Document]
) -> None:
    ranker = Qwen3Ranker(reranker=core, top_k=2)
    ranker.warm_up()
    assert ranker.reranker is not None and ranker.reranker.loaded_model is core.loaded_model
    params = ranker.to_dict()["init_parameters"]
    assert (params["model"], params["device"]) == (core.model_id, {"type": "single", "device": "cpu"})
    assert params["model_kwargs"] == {"dtype": "torch.float32"}
    ranker.close()
    assert core.score(QUERY, TEXTS[:1]) and len(shared_models.keys()) == 1
    restored = Qwen3Ranker.from_dict(ranker.to_dict())
    restored.warm_up()
    assert restored.reranker is not None and restored.reranker.loaded_model is core.loaded_model


def test_explicit_reranker_with_contradicting_settings_is_an_error(core: Qwen3Reranker) -> None:
    with pytest.raises(ValueError, match="max_length=512"):
        Qwen3Ranker(reranker=core, max_length=512)
