"""The Elasticsearch store, written against the official client rather than a framework's store.

One mapping serves both frameworks: ``text`` (analysed by the built-in analyzer of the
``language`` setting, English by default, and scored by BM25 with the embedded store's k1 and b,
so both backends rank alike), ``embedding``
(``dense_vector`` with the embedding model's dimension, cosine, for ``knn``), ``source``
(keyword, for filters) and ``meta`` (stored, not indexed). Chunks are written with
``helpers.bulk`` under their content-derived ids, so re-indexing overwrites instead of duplicating.

Searches read through an `IndexLayout` (``layouts.py``), recognised from the index mapping, so the
same store also reads, without writing to them, indices that Haystack's or LlamaIndex's
Elasticsearch integrations wrote.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection, Iterator, Sequence
from typing import Any

from elasticsearch import (
    ApiError,
    AuthenticationException,
    AuthorizationException,
    Elasticsearch,
    NotFoundError,
    TransportError,
    helpers,
)

from ..records import Chunk, Passage
from ..settings import Settings
from .analysis import check_language
from .base import StoreError, check_embeddings
from .layouts import QWEN3, IndexLayout, LayoutChoice, LayoutError, resolve_layout

logger = logging.getLogger(__name__)

# The name of the BM25 similarity our indices declare (see `index_settings`).
BM25_SIMILARITY = "qwen3_bm25"

# License levels under which Elasticsearch runs `retriever.rrf` (hybrid RRF is not in "basic").
RRF_LICENSES = frozenset({"trial", "platinum", "enterprise"})


class ElasticsearchStore:
    """Chunks in an Elasticsearch index; BM25, kNN and (where licensed) server-side RRF.

    Example:
        >>> store = ElasticsearchStore.from_settings(Settings.from_env(backend="elasticsearch"))
        >>> store.ping()
    """

    def __init__(
        self,
        client: Elasticsearch,
        index: str,
        *,
        url: str,
        layout: LayoutChoice = "auto",
        language: str = "english",
        bm25_k1: float = 0.9,
        bm25_b: float = 0.4,
    ) -> None:
        self.client = client
        self.index = index
        self.location = f"{url} (index {index!r})"
        self._url = url
        self._requested_layout = layout
        self._layout: IndexLayout | None = None
        # Used only when this store creates the index: how its text is analysed and scored.
        self.language = check_language(language)
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b

    @classmethod
    def from_settings(cls, settings: Settings) -> ElasticsearchStore:
        """Connect with the URL, credentials (API key, else basic auth) and TLS options of ``settings``."""
        options: dict[str, Any] = {"verify_certs": settings.es_verify_certs, "request_timeout": 30}
        if settings.es_ca_certs:
            options["ca_certs"] = settings.es_ca_certs
        if settings.es_api_key:
            options["api_key"] = settings.es_api_key
        elif settings.es_username:
            options["basic_auth"] = (settings.es_username, settings.es_password or "")
        client = Elasticsearch(settings.es_url, **options)
        return cls(
            client,
            settings.index_name,
            url=settings.es_url,
            layout=settings.index_layout,
            language=settings.language,
            bm25_k1=settings.bm25_k1,
            bm25_b=settings.bm25_b,
        )

    def write(self, chunks: Sequence[Chunk], embeddings: Sequence[Sequence[float]]) -> None:
        dimension = check_embeddings(chunks, embeddings)
        if not chunks:
            return
        self._check_writable()
        with self._errors():
            self._ensure_index(dimension)
            self.client.delete_by_query(
                index=self.index,
                query={
                    "bool": {
                        "filter": [{"terms": {"source": sorted({chunk.source for chunk in chunks})}}],
                        "must_not": [{"ids": {"values": [chunk.id for chunk in chunks]}}],
                    }
                },
                refresh=True,
                conflicts="proceed",
            )
            actions = (
                {"_index": self.index, "_id": chunk.id, "_source": _to_source(chunk, vector)}
                for chunk, vector in zip(chunks, embeddings, strict=True)
            )
            helpers.bulk(self.client, actions, chunk_size=200)
            self.client.indices.refresh(index=self.index)

    def bm25(self, query: str, top_k: int, sources: Sequence[str] | None = None) -> list[Passage]:
        if not query.strip():
            return []
        with self._layout_errors():
            bm25_query = self.layout.bm25_query(query, sources)
        return self._search(query=bm25_query, size=top_k)

    def knn(self, vector: Sequence[float], top_k: int, sources: Sequence[str] | None = None) -> list[Passage]:
        with self._layout_errors():
            knn = self.layout.knn(vector, top_k, sources)
        return self._search(knn=knn, size=top_k)

    def rrf(
        self,
        query: str,
        vector: Sequence[float],
        top_k: int,
        *,
        rank_constant: int = 60,
        sources: Sequence[str] | None = None,
    ) -> list[Passage]:
        """BM25 and kNN fused by Elasticsearch's ``retriever.rrf`` (needs a licence that allows it)."""
        with self._layout_errors():
            bm25 = {"standard": {"query": self.layout.bm25_query(query, sources)}}
            knn = {"knn": self.layout.knn(vector, top_k, sources)}
        retriever = {
            "rrf": {"retrievers": [bm25, knn], "rank_window_size": top_k, "rank_constant": rank_constant}
        }
        return self._search(retriever=retriever, size=top_k)

    def supports_rrf(self) -> bool:
        """Whether the cluster's licence allows ``retriever.rrf`` (``GET _license``)."""
        try:
            license_type = self.client.license.get()["license"]["type"]
        except (ApiError, TransportError, KeyError) as error:
            logger.info("cannot read the Elasticsearch license (%s); fusing with RRF in Python", error)
            return False
        if license_type not in RRF_LICENSES:
            logger.info(
                "Elasticsearch license %r has no retriever.rrf; fusing with RRF in Python", license_type
            )
            return False
        return True

    def prune(self, prefix: str, keep: Collection[str]) -> int:
        with self._errors():
            if not self.client.indices.exists(index=self.index):
                return 0
            response = self.client.delete_by_query(
                index=self.index,
                query={
                    "bool": {
                        "filter": [{"prefix": {"source": prefix}}],
                        "must_not": [{"terms": {"source": sorted(keep)}}],
                    }
                },
                refresh=True,
                conflicts="proceed",
            )
        return int(response.get("deleted", 0))

    def count(self) -> int:
        with self._errors():
            if not self.client.indices.exists(index=self.index):
                return 0
            return int(self.client.count(index=self.index)["count"])

    def ping(self) -> None:
        with self._errors():
            self.client.info()

    def close(self) -> None:
        self.client.close()

    @property
    def layout(self) -> IndexLayout:
        """The index's field layout: recognised from its mapping on first use (or the one the
        settings name, checked against it), then kept.

        Raises:
            StoreError: The index does not exist, or matches no known layout (the message names
                the missing field and the ``index_layout`` setting).
        """
        if self._layout is None:
            with self._errors():
                mapping = self.client.indices.get_mapping(index=self.index)[self.index]["mappings"]
            with self._layout_errors():
                self._layout = resolve_layout(mapping, self._requested_layout, index=self.index)
            logger.info("index %r at %s has the %s layout", self.index, self._url, self._layout.description)
        return self._layout

    @property
    def writable(self) -> bool:
        """Whether `write` may add chunks: the index is ours, or does not exist yet."""
        try:
            self._check_writable()
        except StoreError:
            return False
        return True

    def _check_writable(self) -> None:
        """Refuse to write into an index another tool wrote (or that the settings say it did)."""
        if self._requested_layout in ("auto", "qwen3"):
            with self._errors():
                if not self.client.indices.exists(index=self.index):
                    return
            if self.layout.writable:
                return
        layout = self._layout.description if self._layout else self._requested_layout
        raise StoreError(
            f"index {self.index!r} at {self._url} has the {layout} layout, which qwen3-rag reads but does "
            "not write: add documents with the tool that wrote it, or index into another index "
            f"(--index) with index_layout auto or {QWEN3.name}"
        )

    def _search(self, **body: Any) -> list[Passage]:
        layout = self.layout
        with self._errors():
            response = self.client.search(index=self.index, source_excludes=[layout.vector_field], **body)
        return [layout.to_passage(hit, rank) for rank, hit in enumerate(response["hits"]["hits"], start=1)]

    @contextlib.contextmanager
    def _layout_errors(self) -> Iterator[None]:
        """A layout that does not fit the index (or the query) is the store's error, with its URL."""
        try:
            yield
        except LayoutError as error:
            raise StoreError(f"Elasticsearch at {self._url}: {error}") from error

    def _ensure_index(self, dimension: int) -> None:
        if self.client.indices.exists(index=self.index):
            mapping = self.client.indices.get_mapping(index=self.index)[self.index]["mappings"]
            existing = mapping.get("properties", {}).get("embedding", {}).get("dims")
            if existing is not None and int(existing) != dimension:
                raise StoreError(
                    f"index {self.index!r} at {self._url} holds {existing}-dimensional embeddings but the "
                    f"embedding model gives {dimension}; use the model it was indexed with, "
                    "or another index name"
                )
            return
        self.client.indices.create(
            index=self.index,
            mappings=mapping_for(dimension, language=self.language),
            settings=index_settings(k1=self.bm25_k1, b=self.bm25_b),
        )

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn the client's exceptions into one `StoreError` with the URL and a hint."""
        try:
            yield
        except helpers.BulkIndexError as error:
            first = next(iter(error.errors[0].values()), {}) if error.errors else {}
            raise StoreError(
                f"Elasticsearch at {self._url} refused {len(error.errors)} chunk(s) of index {self.index!r}; "
                f"first reason: {first.get('error', first)}"
            ) from error
        except NotFoundError as error:
            raise StoreError(
                f"index {self.index!r} does not exist at {self._url}; run `qwen3-rerank index PATH "
                "--backend elasticsearch` first"
            ) from error
        except (AuthenticationException, AuthorizationException) as error:
            raise StoreError(
                f"Elasticsearch at {self._url} rejected the credentials ({error.message}); "
                "set ES_API_KEY, or ES_USERNAME and ES_PASSWORD"
            ) from error
        except ApiError as error:
            raise StoreError(f"Elasticsearch at {self._url} refused the request: {error}") from error
        except TransportError as error:
            raise StoreError(
                f"cannot reach Elasticsearch at {self._url} ({error.message}); start it, "
                "or point --es-url/ES_URL at a running cluster"
            ) from error


def mapping_for(dimension: int, *, language: str = "english") -> dict[str, Any]:
    """The index mapping; ``dimension`` comes from the embedding model, never a constant.

    ``text`` uses Elasticsearch's built-in analyzer for ``language`` (``english``: possessives,
    lower case, the 33 Lucene stop words, Porter stemming; ``none``: ``standard``) and the
    `BM25_SIMILARITY` of `index_settings`.
    """
    analyzer = "standard" if check_language(language) == "none" else language
    return {
        "properties": {
            "text": {"type": "text", "analyzer": analyzer, "similarity": BM25_SIMILARITY},
            "embedding": {"type": "dense_vector", "dims": dimension, "index": True, "similarity": "cosine"},
            "source": {"type": "keyword"},
            "position": {"type": "integer"},
            "meta": {"type": "object", "enabled": False},
        }
    }


def index_settings(*, k1: float = 0.9, b: float = 0.4) -> dict[str, Any]:
    """Index settings: a BM25 similarity with the embedded store's k1 and b (Elasticsearch's
    default is 1.2/0.75), so both backends score alike."""
    return {"similarity": {BM25_SIMILARITY: {"type": "BM25", "k1": k1, "b": b}}}


def _to_source(chunk: Chunk, vector: Sequence[float]) -> dict[str, Any]:
    return {
        "text": chunk.text,
        "embedding": list(vector),
        "source": chunk.source,
        "position": chunk.position,
        "meta": chunk.meta,
    }
