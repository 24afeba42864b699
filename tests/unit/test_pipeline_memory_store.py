"""The embedded store: BM25 and vector search, replacement on re-index, persistence."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from qwen3_rag.records import Chunk
from qwen3_rag.stores import IndexUnavailable, StoreError
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


def test_writing_embeddings_of_another_dimension_is_refused_and_changes_nothing(store: MemoryStore) -> None:
    other = Chunk.create("Mars has two moons.", "moons.md", 0)
    with pytest.raises(StoreError, match="3-dimensional embeddings but the embedding model gives 2"):
        store.write([other], [[1.0, 0.0]])
    assert store.count() == len(CHUNKS)
    assert store.bm25("moons", top_k=1) == []


def test_writing_no_chunks_makes_no_generation(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path, "empty")
    store.write([], [])
    assert store.count() == 0 and not list(store.directory.glob("gen-*"))
    assert list(store.export()) == []


@pytest.mark.parametrize("query", ["", "   \n\t"])
def test_a_blank_query_finds_nothing(store: MemoryStore, query: str) -> None:
    assert store.bm25(query, top_k=3) == []


def test_top_k_zero_asks_for_nothing(store: MemoryStore) -> None:
    assert store.bm25("volcano", top_k=0) == [] and store.knn([1.0, 0.0, 0.0], top_k=0) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"bm25_k1": -0.5}, "bm25_k1 must be >= 0, got -0.5"),
        ({"bm25_k1": float("nan")}, "bm25_k1 must be >= 0, got nan"),
        ({"bm25_b": 1.5}, "bm25_b must be between 0 and 1, got 1.5"),
    ],
)
def test_bm25_parameters_out_of_range_are_refused_by_name(
    tmp_path: Path, options: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        MemoryStore(tmp_path, "test", **options)


def test_an_export_batch_must_hold_a_row(store: MemoryStore) -> None:
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        next(store.export(batch_size=0))


def test_one_embedding_per_chunk_is_required(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="got 1 embeddings for 3 chunks"):
        MemoryStore(tmp_path, "other").write(CHUNKS, VECTORS[:1])


def test_a_corrupt_store_file_says_how_to_recover(store: MemoryStore, tmp_path: Path) -> None:
    generation = tmp_path / "test" / (tmp_path / "test" / "CURRENT").read_text()
    (generation / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(StoreError, match="Delete the file and run `qwen3-rerank index` again"):
        MemoryStore(tmp_path, "test").count()


def test_a_store_sees_what_another_process_indexed(store: MemoryStore, tmp_path: Path) -> None:
    reader = MemoryStore(tmp_path, "test")
    assert reader.count() == len(CHUNKS)
    store.write([Chunk.create("Saturn has rings.", "rings.md", 0)], [[0.0, 0.0, 1.0]])
    assert reader.count() == len(CHUNKS) + 1
    assert reader.bm25("rings", top_k=1)[0].source == "rings.md"


def test_bm25_matches_other_forms_of_a_word_and_ignores_stop_words(store: MemoryStore) -> None:
    hits = store.bm25("the volcanoes", top_k=3)  # "volcanoes" stems to "volcano"; "the" is a stop word
    assert [hit.text for hit in hits] == [CHUNKS[0].text]


def test_without_a_language_words_are_not_stemmed(tmp_path: Path) -> None:
    plain = MemoryStore(tmp_path, "plain", language="none")
    plain.write(CHUNKS, VECTORS)
    assert plain.bm25("volcanoes", top_k=3) == []
    assert plain.bm25("volcano", top_k=3)[0].text == CHUNKS[0].text


def test_an_unknown_language_is_refused_with_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="language must be one of auto, none, arabic"):
        MemoryStore(tmp_path, "x", language="klingon")


def test_bm25_scores_follow_lucene_with_the_given_k1_and_b(tmp_path: Path) -> None:
    import math

    chunks = [Chunk.create("apple apple pear", "a", 0), Chunk.create("pear plum", "b", 0)]
    store = MemoryStore(tmp_path, "lucene", bm25_k1=1.2, bm25_b=0.75)
    store.write(chunks, [[1.0, 0.0], [0.0, 1.0]])
    [hit] = store.bm25("apple", top_k=2)
    idf = math.log(1 + (2 - 1 + 0.5) / (1 + 0.5))
    tf = 2 / (2 + 1.2 * (1 - 0.75 + 0.75 * 3 / 2.5))
    assert hit.score == pytest.approx(idf * tf, rel=1e-5)


def test_changing_k1_rescored_without_reindexing(store: MemoryStore, tmp_path: Path) -> None:
    other = MemoryStore(tmp_path, "test", bm25_k1=2.0, bm25_b=1.0)
    assert other.bm25("tallest volcano", top_k=1)[0].text == CHUNKS[0].text
    assert other.bm25("tallest volcano", top_k=1)[0].score != store.bm25("tallest volcano", top_k=1)[0].score


def test_the_store_is_saved_as_binary_files_not_json(store: MemoryStore, tmp_path: Path) -> None:
    generation = tmp_path / "test" / (tmp_path / "test" / "CURRENT").read_text()
    assert (generation / "vectors.npy").is_file() and (generation / "bm25").is_dir()
    assert not (tmp_path / "test.json").exists()


def test_writes_in_bulk_are_searchable_after_the_block(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path, "bulk")
    with store.bulk():
        store.write([CHUNKS[0], CHUNKS[2]], [VECTORS[0], VECTORS[2]])  # all of space.md
        store.write([CHUNKS[1]], [VECTORS[1]])
        assert MemoryStore(tmp_path, "bulk").count() == 0, "nothing is committed inside the block"
    assert store.count() == 3
    assert store.bm25("yeast", top_k=1)[0].text == CHUNKS[1].text


def test_dense_search_through_the_ann_index_finds_the_exact_neighbours(tmp_path: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((300, 16)).astype("float32")
    chunks = [Chunk.create(f"passage {i}", f"s{i % 7}", i) for i in range(300)]
    exact, ann = (
        MemoryStore(tmp_path, "exact", ann_threshold=0),
        MemoryStore(tmp_path, "ann", ann_threshold=100),
    )
    for store in (exact, ann):
        store.write(chunks, vectors)
    assert (tmp_path / "ann" / (tmp_path / "ann" / "CURRENT").read_text() / "hnsw.usearch").is_file()
    for query in rng.standard_normal((5, 16)):
        # Approximate, and built on several threads: the nearest neighbour and 9 of the 10 exact
        # ones, not necessarily the same order for near ties.
        found, expected = [hit.id for hit in ann.knn(query, 10)], [hit.id for hit in exact.knn(query, 10)]
        assert found[0] == expected[0]
        assert len(set(found) & set(expected)) >= 9
    filtered = ann.knn(vectors[0], 5, sources=["s3"])
    assert filtered and {hit.source for hit in filtered} == {"s3"}


def test_a_reopened_ann_index_searches_as_broadly_as_configured(tmp_path: Path) -> None:
    # usearch does not save the search breadth with the index: a store opened by another process
    # searched at usearch's default (64), losing recall, until the store set it on every search.
    import numpy as np

    from qwen3_rag.stores.memory import HNSW_EXPANSION_SEARCH

    rng = np.random.default_rng(1)
    chunks = [Chunk.create(f"passage {i}", "s", i) for i in range(400)]
    MemoryStore(tmp_path, "ann", ann_threshold=1).write(chunks, rng.standard_normal((400, 8)).astype("f4"))
    reopened = MemoryStore(tmp_path, "ann", ann_threshold=1)
    assert len(reopened.knn(rng.standard_normal(8), 300)) == 300
    assert reopened._current().ann.expansion_search >= HNSW_EXPANSION_SEARCH


def test_passages_without_a_single_word_are_stored_and_found_by_vector(tmp_path: Path) -> None:
    # Found by the API fuzzer: text with no BM25 term (punctuation, or a stop word alone), and a
    # BM25 index over no term at all could not be built.
    store = MemoryStore(tmp_path, "wordless", language="english")
    wordless = [Chunk.create("?!", "marks.txt", 0), Chunk.create("the", "stop.txt", 0)]
    store.write(wordless, [[1.0, 0.0], [0.0, 1.0]])
    assert store.count() == 2
    assert store.bm25("?! the", top_k=3) == []
    assert store.knn([1.0, 0.1], top_k=1)[0].text == "?!"


CHINESE = [
    Chunk.create("量子纠缠是一种量子力学现象，两个粒子的状态相互关联。", "physics.md", 0),
    Chunk.create("光合作用是植物利用光能把二氧化碳和水合成有机物的过程。", "biology.md", 0),
    Chunk.create("BERT模型在2018年改变了自然语言处理。", "nlp.md", 0),
]


@pytest.fixture
def chinese_store(tmp_path: Path) -> MemoryStore:
    store = MemoryStore(tmp_path, "zh")
    store.write(CHINESE, VECTORS)
    return store


@pytest.mark.parametrize(
    ("query", "source"),
    [("解释量子纠缠", "physics.md"), ("光合作用的过程", "biology.md"), ("什么是BERT model", "nlp.md")],
)
def test_a_chinese_question_finds_the_passage_that_shares_its_words(
    chinese_store: MemoryStore, query: str, source: str
) -> None:
    assert chinese_store.bm25(query, top_k=3)[0].source == source


def test_english_and_chinese_passages_are_searched_together(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path, "mixed")
    store.write([CHUNKS[0], CHINESE[0]], [[1.0, 0.0], [0.0, 1.0]])
    assert [hit.source for hit in store.bm25("volcanoes", top_k=2)] == ["space.md"]
    assert [hit.source for hit in store.bm25("量子纠缠", top_k=2)] == ["physics.md"]


def test_the_manifest_records_the_analysis(chinese_store: MemoryStore, tmp_path: Path) -> None:
    import json

    from qwen3_rag.stores.analysis import ANALYSIS_VERSION

    generation = tmp_path / "zh" / (tmp_path / "zh" / "CURRENT").read_text()
    manifest = json.loads((generation / "manifest.json").read_text())
    assert (manifest["analysis"], manifest["language"]) == (ANALYSIS_VERSION, "auto")
    assert manifest["languages"] == {"zh": len(CHINESE)}


def test_an_index_built_with_another_analysis_is_not_searched_with_its_stale_terms(
    chinese_store: MemoryStore, tmp_path: Path
) -> None:
    # An index written before CJK bigrams held each run of Han characters as one term, and its
    # manifest recorded no analysis: searching it with bigrams found nothing at all.
    import json
    import re

    import bm25s

    generation = tmp_path / "zh" / (tmp_path / "zh" / "CURRENT").read_text()
    old = bm25s.BM25(k1=0.9, b=0.4, method="lucene")
    old.index([re.findall(r"\w\w+", chunk.text.lower()) for chunk in CHINESE], show_progress=False)
    old.save(str(generation / "bm25"))
    manifest = json.loads((generation / "manifest.json").read_text())
    del manifest["analysis"], manifest["files"]  # an old index records neither
    (generation / "manifest.json").write_text(json.dumps(manifest))
    reopened = MemoryStore(tmp_path, "zh")
    assert reopened.bm25("解释量子纠缠", top_k=1)[0].source == "physics.md"


def current_generation(directory: Path) -> Path:
    return directory / (directory / "CURRENT").read_text(encoding="utf-8").strip()


@pytest.mark.parametrize(
    "lost", ["vectors.npy", "bm25", "bm25/vocab.index.json", "hnsw.usearch", "texts.bin"]
)
def test_an_incomplete_generation_is_never_used_and_says_what_it_lacks(tmp_path: Path, lost: str) -> None:
    MemoryStore(tmp_path, "test", ann_threshold=1).write(CHUNKS, VECTORS)
    missing = current_generation(tmp_path / "test") / lost
    shutil.rmtree(missing) if missing.is_dir() else missing.unlink()
    reopened = MemoryStore(tmp_path, "test", ann_threshold=1)
    for use in (reopened.ping, reopened.count, lambda: reopened.bm25("volcano", 3)):
        with pytest.raises(IndexUnavailable, match=f"lacks [^;]*{re.escape(lost)}") as raised:
            use()
    assert isinstance(raised.value, StoreError), "callers that catch StoreError see it too"
    assert str(tmp_path) not in raised.value.reason, "the reason can be shown without the path"
    assert "run `qwen3-rerank index` again" in str(raised.value)


def test_readiness_notices_files_lost_after_the_generation_was_opened(store: MemoryStore) -> None:
    store.ping()
    assert store.count() == len(CHUNKS)
    (current_generation(Path(store.location)) / "vectors.npy").unlink()
    with pytest.raises(IndexUnavailable, match=r"lacks vectors\.npy"):
        store.ping()
