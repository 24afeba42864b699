"""The Elasticsearch store, written against the official client rather than a framework's store.

One mapping serves both frameworks: ``text`` (analysed as the embedded store analyses it, with
built-in filters only: Chinese, Japanese and Korean as ``cjk_bigram`` bigrams, other words by the
``language`` setting's stemmer and stop words; scored by BM25 with the embedded store's k1 and b,
so both backends rank alike), ``embedding``
(``dense_vector`` with the embedding model's dimension, cosine, for ``knn``), ``source``
(keyword, for filters) and ``meta`` (stored, not indexed). Chunks are written with
``helpers.bulk`` under their content-derived ids, so re-indexing overwrites instead of duplicating.
The mapping's ``_meta`` records the analysis; searching with another one is refused.

Searches read through an `IndexLayout` (``layouts.py``), recognised from the index mapping, so the
same store also reads, without writing to them, indices that Haystack's or LlamaIndex's
Elasticsearch integrations wrote.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
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
from ..settings import DEFAULT_BM25_B, DEFAULT_BM25_K1, DEFAULT_LANGUAGE, Settings
from .analysis import ANALYSIS_VERSION, check_language, words_language
from .base import StoreError, check_embeddings
from .layouts import QWEN3, IndexLayout, LayoutChoice, LayoutError, resolve_layout

logger = logging.getLogger(__name__)

# The name of the BM25 similarity our indices declare (see `index_settings`).
BM25_SIMILARITY = "qwen3_bm25"
# The analyzer of ``text`` in the indices we create for ``auto``, ``english`` and ``none``.
TEXT_ANALYZER = "qwen3_text"
# Languages whose words Elasticsearch's built-in analyzers treat as ours: for the others the
# index uses the built-in language analyzer, which keeps CJK characters as unigrams.
_CUSTOM_ANALYSIS = frozenset({"english", "none"})
# Analysis plugins that would segment CJK into dictionary words; noted when present, not used,
# since bigrams retrieve as well (docs/evaluation.md) and keep both backends in agreement.
CJK_PLUGINS = frozenset({"analysis-icu", "analysis-smartcn", "analysis-kuromoji", "analysis-nori"})

# Chunks per bulk request of `ElasticsearchStore.replace_all`: about 2 MB with 384-dimensional
# vectors, under the client's 100 MB request cap for vectors of up to 4,096 dimensions.
BULK_CHUNK_SIZE = 500

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
        language: str = DEFAULT_LANGUAGE,
        bm25_k1: float = DEFAULT_BM25_K1,
        bm25_b: float = DEFAULT_BM25_B,
    ) -> None:
        self.client = client
        self.index = index
        self.location = f"{url} (index {index!r})"
        self._url = url
        self._requested_layout = layout
        self._layout: IndexLayout | None = None
        self._analysis_checked = False
        # Used when this store creates the index (how its text is analysed and scored), and
        # checked against the analysis an index of ours records before BM25 searches it.
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
        self._check_analysis()
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
        self._check_analysis()
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

    def replace_all(
        self,
        batches: Iterable[tuple[Sequence[Chunk], Sequence[Sequence[float]]]],
        *,
        dimension: int,
        language: str,
        bm25_k1: float,
        bm25_b: float,
        meta: dict[str, Any] | None = None,
        on_written: Callable[[int], None] | None = None,
    ) -> str:
        """Serve exactly the chunks of ``batches`` under this store's index name, atomically.

        They are streamed (``helpers.streaming_bulk``, bounded memory) into a new concrete index
        ``<name>-<time>-<random>`` created with `mapping_for` and `index_settings` for
        ``language``, k1 and b (``meta`` joins the ``_meta.qwen3_rag`` record), refreshed and
        counted; only then does one ``_aliases`` call point the alias ``<name>`` at it, and the
        indices it pointed at before are deleted. A failure at any step deletes the new index
        and leaves whatever the alias served untouched: never a half-copied index serving.
        ``on_written`` is called with the number of chunks each bulk response confirmed.

        Returns:
            The new concrete index's name.

        Raises:
            StoreError: ``<name>`` is a concrete index (not an alias this method made), or
                Elasticsearch refused a request or a chunk.
        """
        alias = self.index
        with self._errors():
            if self.client.indices.exists(index=alias) and not self.client.indices.exists_alias(name=alias):
                raise StoreError(
                    f"index {alias!r} at {self._url} is an index, not an alias: a copy serves through an "
                    f"alias of that name, swapped atomically. Delete the index first (curl -X DELETE "
                    f"{self._url.rstrip('/')}/{alias}), or copy into another index (--index)"
                )
            previous = self._alias_targets(alias)
            concrete = f"{alias}-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}"
            mappings = mapping_for(dimension, language=language)
            mappings["_meta"]["qwen3_rag"].update(meta or {})
            self.client.indices.create(
                index=concrete,
                mappings=mappings,
                # No refresh while loading (a segment per second would be written for nothing).
                settings={
                    **index_settings(k1=bm25_k1, b=bm25_b, language=language),
                    "refresh_interval": "-1",
                },
            )
        try:
            with self._errors():
                written = self._stream(concrete, batches, on_written)
                self.client.indices.put_settings(
                    index=concrete, settings={"index": {"refresh_interval": None}}
                )
                self.client.indices.refresh(index=concrete)
                counted = int(self.client.count(index=concrete)["count"])
                if counted != written:
                    raise StoreError(
                        f"Elasticsearch at {self._url} holds {counted} chunks in {concrete!r} after "
                        f"{written} were written; the alias was not moved"
                    )
                swap = [{"remove": {"index": old, "alias": alias}} for old in previous]
                self.client.indices.update_aliases(
                    actions=[*swap, {"add": {"index": concrete, "alias": alias}}]
                )
        except BaseException:
            with contextlib.suppress(ApiError, TransportError):
                self.client.indices.delete(index=concrete, ignore_unavailable=True)
            raise
        for old in previous:
            with contextlib.suppress(ApiError, TransportError):
                self.client.indices.delete(index=old, ignore_unavailable=True)
        self._layout, self._analysis_checked = None, False
        return concrete

    def _stream(
        self,
        concrete: str,
        batches: Iterable[tuple[Sequence[Chunk], Sequence[Sequence[float]]]],
        on_written: Callable[[int], None] | None,
    ) -> int:
        """Bulk-write ``batches`` into ``concrete``; returns how many chunks were written."""
        actions = (
            {"_op_type": "create", "_index": concrete, "_id": chunk.id, "_source": _to_source(chunk, vector)}
            for chunks, vectors in batches
            for chunk, vector in zip(chunks, vectors, strict=True)
        )
        written = 0
        for ok, _item in helpers.streaming_bulk(self.client, actions, chunk_size=BULK_CHUNK_SIZE):
            written += ok
            if on_written is not None:
                on_written(1)
        return written

    def _alias_targets(self, alias: str) -> list[str]:
        if not self.client.indices.exists_alias(name=alias):
            return []
        return sorted(self.client.indices.get_alias(name=alias))

    def _mapping(self) -> dict[str, Any]:
        """The index's mapping; through an alias, that of the one index it points at."""
        response = self.client.indices.get_mapping(index=self.index)
        return next(iter(response.values()))["mappings"]

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
                mapping = self._mapping()
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

    def _check_analysis(self) -> None:
        """Refuse BM25 on an index of ours that records another analysis than the settings ask
        for: its terms would not be the query's. Indices that record none (written by other
        tools, or before the analysis was recorded) are searched as they are."""
        if self._analysis_checked:
            return
        with self._errors():
            mapping = self._mapping()
        recorded = mapping.get("_meta", {}).get("qwen3_rag")
        expected = analysis_meta(self.language)
        if recorded is not None and {key: recorded.get(key) for key in expected} != expected:
            raise StoreError(
                f"index {self.index!r} at {self._url} was built with the analysis {recorded} but the "
                f"settings ask for {expected}: set language (QWEN3_RAG_LANGUAGE) to "
                f"{recorded.get('language')!r}, or re-index into another index (--index)"
            )
        self._analysis_checked = True

    def _plugins(self) -> set[str]:
        """The cluster's plugins (``GET _cat/plugins``); none when it will not say."""
        try:
            rows = self.client.cat.plugins(format="json")
        except (ApiError, TransportError) as error:
            logger.info("cannot list the Elasticsearch plugins (%s)", error)
            return set()
        return {str(row.get("component")) for row in rows}

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
            mapping = self._mapping()
            existing = mapping.get("properties", {}).get("embedding", {}).get("dims")
            if existing is not None and int(existing) != dimension:
                raise StoreError(
                    f"index {self.index!r} at {self._url} holds {existing}-dimensional embeddings but the "
                    f"embedding model gives {dimension}; use the model it was indexed with, "
                    "or another index name"
                )
            return
        present = sorted(self._plugins() & CJK_PLUGINS)
        logger.info(
            "creating index %r at %s: text analysed with %s%s",
            self.index,
            self._url,
            analyzer_description(self.language),
            f" (plugins {', '.join(present)} present, not used: bigrams agree with the embedded store)"
            if present
            else "",
        )
        self.client.indices.create(
            index=self.index,
            mappings=mapping_for(dimension, language=self.language),
            settings=index_settings(k1=self.bm25_k1, b=self.bm25_b, language=self.language),
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


def mapping_for(dimension: int, *, language: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
    """The index mapping; ``dimension`` comes from the embedding model, never a constant.

    ``text`` uses the analyzer of `index_settings` (or, for a language other than ``auto``,
    ``english`` and ``none``, Elasticsearch's built-in analyzer of that language) and the
    `BM25_SIMILARITY`; ``_meta`` records the analysis, checked before every BM25 search.
    """
    words = words_language(language)
    analyzer = TEXT_ANALYZER if words in _CUSTOM_ANALYSIS else words
    return {
        "_meta": {"qwen3_rag": analysis_meta(language)},
        "properties": {
            "text": {"type": "text", "analyzer": analyzer, "similarity": BM25_SIMILARITY},
            "embedding": {"type": "dense_vector", "dims": dimension, "index": True, "similarity": "cosine"},
            "source": {"type": "keyword"},
            "position": {"type": "integer"},
            "meta": {"type": "object", "enabled": False},
        },
    }


def index_settings(
    *, k1: float = DEFAULT_BM25_K1, b: float = DEFAULT_BM25_B, language: str = DEFAULT_LANGUAGE
) -> dict[str, Any]:
    """Index settings: a BM25 similarity with the embedded store's k1 and b (Elasticsearch's
    default is 1.2/0.75), so both backends score alike, and the `TEXT_ANALYZER`.

    The analyzer is Elasticsearch's ``cjk`` analyzer (standard tokenizer, ``cjk_width``,
    ``lowercase``, ``cjk_bigram``) with the built-in ``english`` analyzer's filters (possessives,
    the 33 Lucene stop words, Porter stemming) for ``auto`` and ``english``, and without them
    for ``none``: English text is analysed exactly as by the ``english`` analyzer, and CJK text
    as by ``cjk``. Built-in filters only: no plugin is needed.
    """
    settings: dict[str, Any] = {"similarity": {BM25_SIMILARITY: {"type": "BM25", "k1": k1, "b": b}}}
    words = words_language(language)
    if words not in _CUSTOM_ANALYSIS:
        return settings
    english = words == "english"
    filters = {
        "qwen3_possessive": {"type": "stemmer", "language": "possessive_english"},
        "qwen3_stop": {"type": "stop", "stopwords": "_english_"},
        "qwen3_stemmer": {"type": "stemmer", "language": "english"},
    }
    chain = ["cjk_width", "lowercase", "cjk_bigram"]
    if english:
        chain = ["qwen3_possessive", *chain, "qwen3_stop", "qwen3_stemmer"]
    analysis: dict[str, Any] = {
        "analyzer": {TEXT_ANALYZER: {"type": "custom", "tokenizer": "standard", "filter": chain}}
    }
    if english:
        analysis["filter"] = filters
    return {**settings, "analysis": analysis}


def analysis_meta(language: str) -> dict[str, Any]:
    """What an index of ours records about its analysis (``_meta.qwen3_rag``)."""
    words = words_language(language)
    return {"analysis": ANALYSIS_VERSION if words in _CUSTOM_ANALYSIS else 1, "language": words}


def analyzer_description(language: str) -> str:
    words = words_language(language)
    if words not in _CUSTOM_ANALYSIS:
        return f"the built-in {words!r} analyzer (CJK characters as unigrams)"
    return f"{TEXT_ANALYZER!r} (built-in cjk_bigram for CJK, {words} words)"


def _to_source(chunk: Chunk, vector: Sequence[float]) -> dict[str, Any]:
    return {
        "text": chunk.text,
        "embedding": list(vector),
        "source": chunk.source,
        "position": chunk.position,
        "meta": chunk.meta,
    }
