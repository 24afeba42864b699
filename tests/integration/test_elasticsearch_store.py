"""The Elasticsearch store against a real server: mapping, BM25, kNN, replacement, RRF."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qwen3_rag.fusion import reciprocal_rank_fusion
from qwen3_rag.records import Chunk
from qwen3_rag.settings import Settings
from qwen3_rag.stores import StoreError
from qwen3_rag.stores.elasticsearch import ElasticsearchStore

pytestmark = pytest.mark.integration

CHUNKS = [
    Chunk.create("Olympus Mons is the tallest volcano on Mars.", "space.md", 0),
    Chunk.create("Bread rises because yeast makes carbon dioxide.", "food.md", 0),
    Chunk.create("Jupiter is the largest planet; Mars is smaller.", "space.md", 1),
]
VECTORS = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.8, 0.0, 0.6]]


@pytest.fixture
def store(es_url: str, index_name: str) -> Iterator[ElasticsearchStore]:
    settings = Settings.from_env({}, backend="elasticsearch", es_url=es_url, index_name=index_name)
    store = ElasticsearchStore.from_settings(settings)
    store.write(CHUNKS, VECTORS)
    yield store
    store.close()


def test_the_mapping_takes_its_dimension_from_the_embeddings(store: ElasticsearchStore) -> None:
    mapping = store.client.indices.get_mapping(index=store.index)[store.index]["mappings"]["properties"]
    assert mapping["embedding"]["type"] == "dense_vector"
    assert int(mapping["embedding"]["dims"]) == 3
    assert mapping["source"]["type"] == "keyword"


def test_bm25_matches_the_text_field(store: ElasticsearchStore) -> None:
    hits = store.bm25("tallest volcano", top_k=3)
    assert hits[0].id == CHUNKS[0].id and hits[0].source == "space.md"
    assert CHUNKS[1].id not in {hit.id for hit in hits}


def test_knn_ranks_by_cosine_similarity(store: ElasticsearchStore) -> None:
    assert [hit.id for hit in store.knn([0.9, 0.0, 0.5], top_k=3)][:2] == [CHUNKS[2].id, CHUNKS[0].id]


def test_filters_restrict_both_searches_to_sources(store: ElasticsearchStore) -> None:
    assert {hit.source for hit in store.knn([0.0, 1.0, 0.0], top_k=3, sources=["space.md"])} == {"space.md"}
    assert store.bm25("yeast", top_k=3, sources=["space.md"]) == []


def test_rewriting_replaces_and_removes_stale_chunks(store: ElasticsearchStore) -> None:
    store.write(CHUNKS, VECTORS)
    assert store.count() == 3
    store.write([Chunk.create("Mars has two moons.", "space.md", 0)], [[1.0, 0.0, 0.0]])
    assert store.count() == 2
    assert {hit.text for hit in store.knn([1.0, 1.0, 1.0], top_k=5)} == {
        "Mars has two moons.",
        CHUNKS[1].text,
    }


def test_server_side_rrf_orders_like_client_side_rrf(store: ElasticsearchStore) -> None:
    # No ties: the two implementations may break ties differently.
    query, vector = "tallest volcano", [0.1, 1.0, 0.2]
    client_side = reciprocal_rank_fusion([store.bm25(query, 3), store.knn(vector, 3)], top_k=3)
    server_side = store.rrf(query, vector, top_k=3)
    assert [p.id for p in server_side] == [p.id for p in client_side]
    assert [p.score for p in server_side] == pytest.approx([p.score for p in client_side])


def test_a_missing_index_says_to_run_index(es_url: str, index_name: str) -> None:
    settings = Settings.from_env({}, backend="elasticsearch", es_url=es_url, index_name=index_name)
    store = ElasticsearchStore.from_settings(settings)
    assert store.count() == 0
    with pytest.raises(StoreError, match="run `qwen3-rerank index PATH --backend elasticsearch` first"):
        store.bm25("anything", top_k=3)


def test_a_different_embedding_dimension_is_refused(store: ElasticsearchStore) -> None:
    with pytest.raises(StoreError, match="holds 3-dimensional embeddings but the embedding model gives 2"):
        store.write([Chunk.create("x", "x.md", 0)], [[1.0, 0.0]])


def test_prune_deletes_chunks_of_sources_gone_from_a_folder_only(store: ElasticsearchStore) -> None:
    folder = [
        Chunk.create("Kept text.", "/docs/kept.md", 0),
        Chunk.create("Gone text.", "/docs/gone.md", 0),
        Chunk.create("Neighbour text.", "/docs-other/n.md", 0),
    ]
    store.write(folder, [[0.0, 0.0, 1.0]] * 3)
    assert store.prune("/docs/", {"/docs/kept.md"}) == 1
    remaining = {hit.source for hit in store.knn([0.0, 0.0, 1.0], top_k=10)}
    assert {"/docs/kept.md", "/docs-other/n.md", "space.md", "food.md"} <= remaining
    assert "/docs/gone.md" not in remaining


CHINESE = [
    Chunk.create("量子纠缠是一种量子力学现象，两个粒子的状态相互关联。", "physics.md", 0),
    Chunk.create("光合作用是植物利用光能把二氧化碳和水合成有机物的过程，释放氧气。", "biology.md", 0),
]


@pytest.fixture
def chinese_store(es_url: str, index_name: str) -> Iterator[ElasticsearchStore]:
    settings = Settings.from_env({}, backend="elasticsearch", es_url=es_url, index_name=index_name)
    store = ElasticsearchStore.from_settings(settings)
    store.write([*CHINESE, CHUNKS[0]], VECTORS)
    yield store
    store.close()


def test_chinese_is_matched_by_bigrams_as_in_the_embedded_store(chinese_store: ElasticsearchStore) -> None:
    # With the `english` analyzer the photosynthesis passage matched 解释量子纠缠 through the
    # single character 释; bigrams match only the passage that shares its words.
    assert [hit.source for hit in chinese_store.bm25("解释量子纠缠", top_k=3)] == ["physics.md"]
    assert chinese_store.bm25("光合作用的过程", top_k=3)[0].source == "biology.md"
    assert [hit.source for hit in chinese_store.bm25("the volcanoes", top_k=3)] == ["space.md"]


def test_the_index_records_its_analysis_and_refuses_another(
    chinese_store: ElasticsearchStore, es_url: str, index_name: str
) -> None:
    mapping = chinese_store.client.indices.get_mapping(index=index_name)[index_name]["mappings"]
    assert mapping["_meta"]["qwen3_rag"]["language"] == "auto"
    assert set(mapping["_meta"]["qwen3_rag"]["languages"]) <= {"english", "zh"}
    german = ElasticsearchStore.from_settings(
        Settings.from_env(
            {}, backend="elasticsearch", es_url=es_url, index_name=index_name, language="german"
        )
    )
    with pytest.raises(StoreError, match=r"was built with the analysis .*set language .* to 'auto'"):
        german.bm25("量子", top_k=1)
    german.close()
