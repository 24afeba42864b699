"""A LlamaIndex `Qwen3Rerank` and a Haystack `Qwen3Ranker` in one process share one model."""

from __future__ import annotations

from pathlib import Path

import pytest
from haystack import Document
from haystack.utils import ComponentDevice
from llama_index.core.schema import NodeWithScore, TextNode

import qwen3_rerank.reranker
from haystack_integrations.components.rankers.qwen3 import Qwen3Ranker
from llama_index.postprocessor.qwen3_rerank import Qwen3Rerank
from qwen3_rerank import Qwen3Reranker, shared_models
from qwen3_rerank.config import RerankerConfig
from qwen3_rerank.loading import LoadedModel

QUERY = "What is a reranker?"
TEXTS = ["A reranker scores query-passage pairs.", "Paris is in France.", "BM25 is lexical."]


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


def test_same_settings_load_the_weights_once(tiny_qwen3_dir: Path, load_calls: list[str]) -> None:
    postprocessor = Qwen3Rerank(model=str(tiny_qwen3_dir), device="cpu", top_n=3)
    ranker = Qwen3Ranker(model=str(tiny_qwen3_dir), device=ComponentDevice.from_str("cpu"), top_k=3)
    ranker.warm_up()

    assert load_calls == [str(tiny_qwen3_dir)]
    assert ranker.reranker is not None
    assert postprocessor.reranker.loaded_model is ranker.reranker.loaded_model
    assert len(shared_models.keys()) == 1


def test_both_frameworks_rank_identically(tiny_qwen3_dir: Path) -> None:
    postprocessor = Qwen3Rerank(model=str(tiny_qwen3_dir), device="cpu", top_n=3)
    ranker = Qwen3Ranker(model=str(tiny_qwen3_dir), device=ComponentDevice.from_str("cpu"), top_k=3)
    nodes = [NodeWithScore(node=TextNode(text=text, id_=str(i))) for i, text in enumerate(TEXTS)]
    documents = [Document(id=str(i), content=text) for i, text in enumerate(TEXTS)]

    from_llamaindex = postprocessor.postprocess_nodes(nodes, query_str=QUERY)
    from_haystack = ranker.run(query=QUERY, documents=documents)["documents"]

    assert [(n.node.node_id, n.score) for n in from_llamaindex] == [(d.id, d.score) for d in from_haystack]


def test_one_explicit_core_serves_both(tiny_qwen3_dir: Path, load_calls: list[str]) -> None:
    with Qwen3Reranker(str(tiny_qwen3_dir), device="cpu", max_length=1024) as core:
        postprocessor = Qwen3Rerank(reranker=core)
        ranker = Qwen3Ranker(reranker=core)
        ranker.warm_up()
        assert ranker.reranker is not None
        assert postprocessor.reranker.config == ranker.reranker.config == core.config
        assert postprocessor.reranker.loaded_model is ranker.reranker.loaded_model is core.loaded_model
        assert load_calls == [str(tiny_qwen3_dir)]
        # Closing the adapters leaves the caller's core usable.
        postprocessor.close()
        ranker.close()
        assert core.score(QUERY, TEXTS)
    assert shared_models.keys() == []


def test_weights_are_freed_when_the_last_component_closes(tiny_qwen3_dir: Path) -> None:
    postprocessor = Qwen3Rerank(model=str(tiny_qwen3_dir), device="cpu")
    ranker = Qwen3Ranker(model=str(tiny_qwen3_dir), device=ComponentDevice.from_str("cpu"))
    ranker.warm_up()
    postprocessor.close()
    assert len(shared_models.keys()) == 1  # the ranker still holds it
    ranker.close()
    assert shared_models.keys() == []
