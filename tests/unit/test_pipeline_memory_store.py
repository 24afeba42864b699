"""The embedded store: BM25 and vector search, replacement on re-index, persistence."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwen3_rag.records import Chunk
from qwen3_rag.stores import StoreError
from qwen3_rag.stores.memory import MemoryStore

CHUNKS = [
    Chunk.create("Olympus Mons is the tallest volcano on Mars.", "space.md", 0),
    Chunk.create("Bread rises because yeast makes carbon dioxide.", "food.md", 0),
    Chunk.create("Jupiter is the largest planet.", "space.md", 1),
]
VECTORS = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.8, 0.0, 0.6]]


@pytest.fixture
def store(tmp_path: Path) -> MemoryStore:
    store = MemoryStore(tmp_path, "test")
    store.write(CHUNKS, VECTORS)
    return store


def test_bm25_ranks_the_passage_with_the_query_terms_first(store: MemoryStore) -> None:
    hits = store.bm25("tallest volcano", top_k=3)
    assert hits[0].text == CHUNKS[0].text
    assert hits[0].source == "space.md" and hits[0].rank == 1
    assert all(hit.text != CHUNKS[1].text for hit in hits), "a passage without the terms is no match"


def test_a_query_matching_nothing_returns_no_passages(store: MemoryStore) -> None:
    assert store.bm25("zebra xylophone", top_k=3) == []


def test_knn_ranks_by_cosine_similarity(store: MemoryStore) -> None:
    hits = store.knn([0.9, 0.0, 0.5], top_k=3)
    assert [hit.id for hit in hits] == [CHUNKS[2].id, CHUNKS[0].id, CHUNKS[1].id]
    assert hits[0].score > hits[1].score > hits[2].score


def test_searches_can_be_restricted_to_sources(store: MemoryStore) -> None:
    assert {hit.source for hit in store.knn([0.0, 1.0, 0.0], top_k=3, sources=["space.md"])} == {"space.md"}
    assert store.bm25("yeast", top_k=3, sources=["space.md"]) == []


def test_writing_the_same_chunks_again_does_not_duplicate(store: MemoryStore) -> None:
    store.write(CHUNKS, VECTORS)
    assert store.count() == len(CHUNKS)


def test_rewriting_a_source_removes_its_stale_chunks(store: MemoryStore) -> None:
    edited = Chunk.create("Mars has two moons.", "space.md", 0)
    store.write([edited], [[1.0, 0.0, 0.0]])
    assert store.count() == 2
    assert {hit.text for hit in store.knn([1.0, 1.0, 1.0], top_k=5)} == {edited.text, CHUNKS[1].text}


def test_the_store_persists_across_instances(store: MemoryStore, tmp_path: Path) -> None:
    reopened = MemoryStore(tmp_path, "test")
    assert reopened.count() == len(CHUNKS)
    assert reopened.bm25("yeast", top_k=1)[0].text == CHUNKS[1].text


def test_embeddings_of_another_dimension_are_refused(store: MemoryStore) -> None:
    with pytest.raises(StoreError, match="3-dimensional embeddings but the embedding model gives 2"):
        store.knn([1.0, 0.0], top_k=1)


def test_one_embedding_per_chunk_is_required(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="got 1 embeddings for 3 chunks"):
        MemoryStore(tmp_path, "other").write(CHUNKS, VECTORS[:1])


def test_a_corrupt_store_file_says_how_to_recover(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(StoreError, match="Delete the file and run `qwen3-rerank index` again"):
        MemoryStore(tmp_path, "broken")


def test_a_store_sees_what_another_process_indexed(store: MemoryStore, tmp_path: Path) -> None:
    reader = MemoryStore(tmp_path, "test")
    assert reader.count() == len(CHUNKS)
    store.write([Chunk.create("Saturn has rings.", "rings.md", 0)], [[0.0, 0.0, 1.0]])
    assert reader.count() == len(CHUNKS) + 1
    assert reader.bm25("rings", top_k=1)[0].source == "rings.md"
