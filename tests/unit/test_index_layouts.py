"""Index layouts: recognised from the mapping each writer creates, read through one value."""

from __future__ import annotations

import json

import pytest

from qwen3_rag.stores.elasticsearch import mapping_for
from qwen3_rag.stores.layouts import LayoutError, resolve_layout

VECTOR = {"type": "dense_vector", "dims": 3, "index": True, "similarity": "dot_product"}
KEYWORD_SUBFIELD = {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}

# What elasticsearch-haystack's ElasticsearchDocumentStore maps after writing a document with
# meta {"file_path": ..., "page": 1} (flattened; strings become keywords by its dynamic template).
HAYSTACK_MAPPING = {
    "properties": {
        "content": {"type": "text"},
        "embedding": VECTOR,
        "file_path": {"type": "keyword"},
        "id": {"type": "keyword"},
        "page": {"type": "long"},
    }
}
# What llama-index-vector-stores-elasticsearch's ElasticsearchStore maps (metadata in an object).
LLAMAINDEX_MAPPING = {
    "properties": {
        "content": KEYWORD_SUBFIELD,
        "embedding": VECTOR,
        "metadata": {
            "properties": {
                "_node_content": KEYWORD_SUBFIELD,
                "_node_type": KEYWORD_SUBFIELD,
                "doc_id": {"type": "keyword"},
                "document_id": {"type": "keyword"},
                "ref_doc_id": {"type": "keyword"},
                "file_path": KEYWORD_SUBFIELD,
            }
        },
    }
}


def test_our_mapping_is_recognised_and_writable() -> None:
    layout = resolve_layout(mapping_for(3), "auto", index="docs")
    assert (layout.name, layout.text_field, layout.source_filter_field, layout.writable) == (
        "qwen3",
        "text",
        "source",
        True,
    )
    assert layout.dimension == 3


def test_haystack_mapping_reads_flattened_meta_and_filters_on_file_path() -> None:
    layout = resolve_layout(HAYSTACK_MAPPING, "auto", index="docs")
    assert (layout.name, layout.writable, layout.similarity) == ("haystack", False, "dot_product")
    assert layout.bm25_query("boil", ["a.md"]) == {
        "bool": {"must": [{"match": {"content": "boil"}}], "filter": [{"terms": {"file_path": ["a.md"]}}]}
    }
    hit = {
        "_id": "h1",
        "_score": 2.5,
        "_source": {"content": "water boils", "id": "h1", "file_path": "a.md", "page": 1},
    }
    passage = layout.to_passage(hit, 1)
    assert (passage.id, passage.text, passage.source, passage.score, passage.meta) == (
        "h1",
        "water boils",
        "a.md",
        2.5,
        {"page": 1},
    )


def test_llamaindex_mapping_reads_the_metadata_object_and_filters_on_its_keyword() -> None:
    layout = resolve_layout(LLAMAINDEX_MAPPING, "auto", index="docs")
    assert (layout.name, layout.writable) == ("llamaindex", False)
    knn = layout.knn([0.1, 0.2, 0.3], 5, ["a.md"])
    assert knn["field"] == "embedding"
    assert knn["filter"] == [{"terms": {"metadata.file_path.keyword": ["a.md"]}}]
    node = json.dumps({"text": "", "metadata": {"file_path": "a.md"}})
    metadata = {"_node_content": node, "_node_type": "TextNode", "doc_id": "d1", "file_path": "a.md"}
    hit = {"_id": "n1", "_score": 0.9, "_source": {"content": "water boils", "metadata": metadata}}
    passage = layout.to_passage(hit, 2)
    assert (passage.text, passage.source, passage.rank, passage.meta) == (
        "water boils",
        "a.md",
        2,
        {"doc_id": "d1"},
    )


def test_explicit_layout_overrides_detection() -> None:
    assert resolve_layout(LLAMAINDEX_MAPPING, "haystack", index="docs").name == "haystack"


def test_an_index_without_a_known_text_field_names_the_field_and_the_setting() -> None:
    mapping = {"properties": {"body": {"type": "text"}, "vector": VECTOR}}
    with pytest.raises(LayoutError, match=r"no text field 'text'.*'content'.*index_layout"):
        resolve_layout(mapping, "auto", index="docs")


def test_an_explicit_layout_that_does_not_fit_names_the_missing_field() -> None:
    with pytest.raises(LayoutError, match=r"no text field 'text'.*QWEN3_RAG_INDEX_LAYOUT"):
        resolve_layout(HAYSTACK_MAPPING, "qwen3", index="docs")
    no_vector = {"properties": {"content": {"type": "text"}}}
    with pytest.raises(LayoutError, match=r"no dense_vector field 'embedding'"):
        resolve_layout(no_vector, "auto", index="docs")


def test_source_filters_on_an_index_without_sources_are_refused_not_ignored() -> None:
    mapping = {"properties": {"content": {"type": "text"}, "embedding": VECTOR}}
    layout = resolve_layout(mapping, "auto", index="docs")
    assert layout.bm25_query("boil", None)["bool"]["filter"] == []
    with pytest.raises(LayoutError, match="no source field"):
        layout.bm25_query("boil", ["a.md"])


def test_a_query_vector_of_the_wrong_dimension_is_refused() -> None:
    layout = resolve_layout(HAYSTACK_MAPPING, "auto", index="docs")
    with pytest.raises(LayoutError, match=r"3-dimensional.*has 2"):
        layout.knn([0.1, 0.2], 5, None)
