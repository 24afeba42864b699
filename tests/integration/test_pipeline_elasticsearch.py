"""The whole pipeline on Elasticsearch, for both frameworks: index once, ask from either."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from qwen3_rag import RagService
from qwen3_rag.settings import Settings
from qwen3_rag.stores.elasticsearch import ElasticsearchStore
from qwen3_rag.testing import SAMPLES_DIR, offline_settings

pytestmark = pytest.mark.integration

QUESTION = "At what temperature does water boil at sea level?"


@pytest.fixture
def settings(tmp_path: Path, tiny_qwen3_dir: Path, es_url: str, index_name: str) -> Settings:
    """Offline models and this test's own Elasticsearch index."""
    return offline_settings(
        tmp_path,
        backend="elasticsearch",
        es_url=es_url,
        index_name=index_name,
        reranker_model=str(tiny_qwen3_dir),
    )


def test_one_index_serves_both_frameworks(settings: Settings) -> None:
    with RagService(settings.replace(framework="haystack")) as service:
        report = service.index_paths([SAMPLES_DIR])
        assert service.document_count() == report.chunks > 0
        haystack = service.ask(QUESTION, candidates=8, top_n=3)
    with RagService(settings.replace(framework="llamaindex")) as service:
        llamaindex = service.ask(QUESTION, candidates=8, top_n=3)

    for answer in (haystack, llamaindex):
        assert len(answer.passages) == 3
        assert answer.stages["bm25"][0].source.endswith("water.md")
        assert {p.id for p in answer.passages} <= {p.id for p in answer.stages["fusion"]}
    assert [(p.id, p.score) for p in haystack.passages] == [(p.id, p.score) for p in llamaindex.passages]


def test_reindexing_does_not_duplicate(settings: Settings) -> None:
    with RagService(settings) as service:
        first = service.index_paths([SAMPLES_DIR])
        service.index_paths([SAMPLES_DIR])
        assert service.document_count() == first.chunks


def test_forced_server_side_fusion_matches_client_side(settings: Settings) -> None:
    with RagService(settings.replace(fusion="client")) as service:
        service.index_paths([SAMPLES_DIR])
        client_side = service.retrieve(QUESTION, candidates=8)
    with RagService(settings.replace(fusion="elasticsearch")) as service:
        server_side = service.retrieve(QUESTION, candidates=8)
        answer = service.ask(QUESTION, candidates=8, top_n=2)
    assert (client_side.fused_by, server_side.fused_by) == ("client", "elasticsearch")
    assert [p.id for p in server_side.fused] == [p.id for p in client_side.fused]
    assert len(answer.passages) == 2


def test_auto_fusion_falls_back_to_client_side_with_one_log_line(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    store = ElasticsearchStore.from_settings(settings)
    license_allows = store.supports_rrf()
    store.close()
    caplog.clear()
    with RagService(settings.replace(fusion="auto")) as service:
        service.index_paths([SAMPLES_DIR / "water.md"])
        with caplog.at_level(logging.INFO, logger="qwen3_rag"):
            first = service.retrieve(QUESTION, candidates=4)
            service.retrieve(QUESTION, candidates=4)
    expected = "elasticsearch" if license_allows else "client"
    assert first.fused_by == expected
    fallback_lines = [r for r in caplog.records if "fusing with RRF in Python" in r.getMessage()]
    assert len(fallback_lines) == (0 if license_allows else 1)
