"""Where an Elasticsearch index keeps each part of a passage: one small value per known writer.

Users who already index with Haystack (elasticsearch-haystack's ``ElasticsearchDocumentStore``) or
LlamaIndex (llama-index-vector-stores-elasticsearch's ``ElasticsearchStore``) should not have to
re-index into our mapping. An `IndexLayout` names the text, vector, source and metadata fields of
one such writer; the store builds its BM25, kNN and filter clauses and reads hits through it, so
one store reads all three. The layout is recognised from the index mapping (``GET _mapping``)
unless the setting ``index_layout`` names it.

Example:
    >>> layout = resolve_layout(mapping, requested="auto", index="docs")
    >>> layout.name, layout.text_field
    ('haystack', 'content')
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..records import Passage

LayoutName = Literal["qwen3", "haystack", "llamaindex"]
LayoutChoice = Literal["auto", "qwen3", "haystack", "llamaindex"]

# Metadata keys that name where a passage came from, in the order they are preferred:
# ours, then what Haystack's converters and LlamaIndex's readers write.
SOURCE_KEYS = ("source", "file_path", "url", "file_name")

# Fields of Haystack's ``Document.to_dict()`` that are not metadata (the rest is flattened meta).
HAYSTACK_SPECIAL_FIELDS = frozenset({"content", "embedding", "id", "score", "sparse_embedding", "blob"})
# LlamaIndex's bookkeeping inside ``metadata``: the serialised node and its class, not user metadata.
LLAMAINDEX_INTERNAL_KEYS = frozenset({"_node_content", "_node_type"})


class LayoutError(ValueError):
    """The index mapping matches no known layout, or not the one the settings name."""


@dataclass(frozen=True)
class IndexLayout:
    """The fields of one index layout, and how to query and read it.

    Attributes:
        name: ``"qwen3"`` (written by `qwen3-rerank index`), ``"haystack"`` or ``"llamaindex"``.
        text_field: Analysed text field, searched by BM25 and returned as the passage text.
        vector_field: ``dense_vector`` field searched by kNN.
        meta_field: Object field holding the metadata; ``None`` when metadata fields are flattened
            into the document (Haystack).
        source_field: Metadata key naming a passage's source (file path or URL); ``None`` if the
            index has none, in which case searches cannot be restricted to sources.
        source_filter_field: Keyword field that ``terms`` filters on for ``source_field``.
        similarity: The vector field's similarity (``cosine``, ``dot_product``, ...), as mapped.
        dimension: The vector field's ``dims``, when the mapping states it.
        writable: Whether qwen3-rag may write; only its own layout is.
        hidden_meta: Metadata keys not shown as passage metadata (writers' bookkeeping).
    """

    name: LayoutName
    text_field: str
    vector_field: str = "embedding"
    meta_field: str | None = None
    source_field: str | None = None
    source_filter_field: str | None = None
    similarity: str | None = None
    dimension: int | None = None
    writable: bool = False
    hidden_meta: frozenset[str] = field(default_factory=frozenset)

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self.name]

    def filters(self, sources: Sequence[str] | None) -> list[dict[str, Any]]:
        """``terms`` filters restricting a search to ``sources``; an error where the index has none."""
        if not sources:
            return []
        if self.source_filter_field is None:
            raise LayoutError(
                f"cannot restrict the search to sources {list(sources)!r}: this {self.description} index "
                f"has no source field (looked for metadata keys {', '.join(SOURCE_KEYS)})"
            )
        return [{"terms": {self.source_filter_field: list(sources)}}]

    def bm25_query(self, query: str, sources: Sequence[str] | None) -> dict[str, Any]:
        """A ``match`` on the text field, filtered by source."""
        return {"bool": {"must": [{"match": {self.text_field: query}}], "filter": self.filters(sources)}}

    def knn(self, vector: Sequence[float], top_k: int, sources: Sequence[str] | None) -> dict[str, Any]:
        """A ``knn`` clause on the vector field, with the source filter applied during the search."""
        if self.dimension is not None and len(vector) != self.dimension:
            raise LayoutError(
                f"the index holds {self.dimension}-dimensional embeddings in {self.vector_field!r} but the "
                f"query embedding has {len(vector)}; use the embedding model the index was written with "
                "(--embedding-model or QWEN3_RAG_EMBEDDING_MODEL)"
            )
        knn: dict[str, Any] = {
            "field": self.vector_field,
            "query_vector": list(vector),
            "k": top_k,
            "num_candidates": max(100, 2 * top_k),
        }
        filters = self.filters(sources)
        if filters:
            knn["filter"] = filters
        return knn

    def to_passage(self, hit: Mapping[str, Any], rank: int) -> Passage:
        """A search hit as a `Passage`: the layout's text, source and metadata, the hit's id and score."""
        body = hit.get("_source", {})
        meta = self._meta(body)
        source = meta.pop(self.source_field, "") if self.source_field else ""
        text = body.get(self.text_field)
        if not isinstance(text, str):
            text = _node_text(body.get(self.meta_field or "", {})) if self.name == "llamaindex" else ""
        return Passage(hit["_id"], text, str(source or ""), float(hit.get("_score") or 0.0), rank, meta)

    def _meta(self, body: Mapping[str, Any]) -> dict[str, Any]:
        if self.name == "qwen3":
            position = body.get("position")
            return {**body.get("meta", {}), "source": body.get("source", ""), "position": position}
        if self.meta_field is None:
            meta = {key: value for key, value in body.items() if key not in HAYSTACK_SPECIAL_FIELDS}
        else:
            nested = body.get(self.meta_field)
            meta = dict(nested) if isinstance(nested, Mapping) else {}
        return {key: value for key, value in meta.items() if key not in self.hidden_meta}


DESCRIPTIONS: dict[str, str] = {
    "qwen3": "qwen3-rag (`qwen3-rerank index`)",
    "haystack": "Haystack (elasticsearch-haystack's ElasticsearchDocumentStore)",
    "llamaindex": "LlamaIndex (llama-index-vector-stores-elasticsearch's ElasticsearchStore)",
}

# What each writer maps, so that an index is recognised by its fields and checked against them.
REQUIRED_FIELDS: dict[str, tuple[str, str]] = {
    "qwen3": ("text", "embedding"),
    "haystack": ("content", "embedding"),
    "llamaindex": ("content", "embedding"),
}

QWEN3 = IndexLayout(
    "qwen3",
    text_field="text",
    meta_field="meta",
    source_field="source",
    source_filter_field="source",
    similarity="cosine",
    writable=True,
)


def resolve_layout(mapping: Mapping[str, Any], requested: LayoutChoice, *, index: str) -> IndexLayout:
    """The layout of an index with this mapping: the one ``requested``, checked against the
    mapping, or with ``"auto"`` the one the mapping's fields show.

    Raises:
        LayoutError: A field the layout needs is missing; the message names it and the setting.
    """
    properties: Mapping[str, Any] = mapping.get("properties", {})
    name = _detect(properties) if requested == "auto" else requested
    if name is None:
        raise LayoutError(
            f"index {index!r} matches no known layout: it has no text field 'text' (qwen3-rag) or "
            f"'content' (Haystack, LlamaIndex); its fields are {sorted(properties)}. "
            "Set index_layout (--index-layout or QWEN3_RAG_INDEX_LAYOUT) to qwen3, haystack or "
            "llamaindex, or re-index it with `qwen3-rerank index`"
        )
    if name not in REQUIRED_FIELDS:
        raise LayoutError(f"index_layout must be one of auto, {', '.join(REQUIRED_FIELDS)}; got {name!r}")
    _check_fields(properties, name, index=index, requested=requested)
    if name == "qwen3":
        return dataclasses.replace(QWEN3, dimension=_dims(properties["embedding"]))
    return _foreign_layout(properties, name)


def _detect(properties: Mapping[str, Any]) -> LayoutName | None:
    if _is_text(properties.get("text")):
        return "qwen3"
    if not _is_text(properties.get("content")):
        return None
    metadata = properties.get("metadata", {}).get("properties", {})
    if LLAMAINDEX_INTERNAL_KEYS & set(metadata) or {"doc_id", "ref_doc_id"} <= set(metadata):
        return "llamaindex"
    return "haystack"


def _check_fields(properties: Mapping[str, Any], name: str, *, index: str, requested: str) -> None:
    text_field, vector_field = REQUIRED_FIELDS[name]
    how = "the index_layout setting names" if requested != "auto" else "its fields suggest"
    if not _is_text(properties.get(text_field)):
        raise LayoutError(
            f"index {index!r} has no text field {text_field!r}, which the {DESCRIPTIONS[name]} layout "
            f"({how}) needs; its fields are {sorted(properties)}. Set index_layout (--index-layout or "
            "QWEN3_RAG_INDEX_LAYOUT) to the tool that wrote the index: qwen3, haystack or llamaindex"
        )
    if properties.get(vector_field, {}).get("type") != "dense_vector":
        raise LayoutError(
            f"index {index!r} has no dense_vector field {vector_field!r}, which the {DESCRIPTIONS[name]} "
            f"layout ({how}) needs for kNN; its fields are {sorted(properties)}. Write the index with "
            "embeddings, or set index_layout (--index-layout or QWEN3_RAG_INDEX_LAYOUT) to the tool "
            "that wrote it"
        )


def _foreign_layout(properties: Mapping[str, Any], name: LayoutName) -> IndexLayout:
    vector = properties["embedding"]
    if name == "haystack":
        meta_properties, meta_field, prefix = properties, None, ""
        hidden: frozenset[str] = frozenset()
    else:
        meta_properties = properties.get("metadata", {}).get("properties", {})
        meta_field, prefix, hidden = "metadata", "metadata.", LLAMAINDEX_INTERNAL_KEYS
    source_field, filter_field = None, None
    for key in SOURCE_KEYS:
        keyword = _keyword_path(meta_properties.get(key))
        if keyword is not None:
            source_field, filter_field = key, prefix + key + keyword
            break
    return IndexLayout(
        name,
        text_field="content",
        vector_field="embedding",
        meta_field=meta_field,
        source_field=source_field,
        source_filter_field=filter_field,
        similarity=vector.get("similarity"),
        dimension=_dims(vector),
        writable=False,
        hidden_meta=hidden,
    )


def _is_text(spec: Any) -> bool:
    return isinstance(spec, Mapping) and spec.get("type") in {"text", "match_only_text"}


def _keyword_path(spec: Any) -> str | None:
    """``""`` if the field is a keyword, ``".keyword"`` if it has that sub-field, else None."""
    if not isinstance(spec, Mapping):
        return None
    if spec.get("type") == "keyword":
        return ""
    for sub_name, sub in spec.get("fields", {}).items():
        if sub.get("type") == "keyword":
            return f".{sub_name}"
    return None


def _dims(vector: Mapping[str, Any]) -> int | None:
    dims = vector.get("dims")
    return int(dims) if dims is not None else None


def _node_text(metadata: Any) -> str:
    """The text LlamaIndex keeps in ``_node_content`` when its text field is empty."""
    try:
        return str(json.loads(metadata.get("_node_content", "{}")).get("text", ""))
    except (AttributeError, ValueError):
        return ""
