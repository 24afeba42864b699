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
from collections import Counter
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
from .analysis import check_language, detect_language, detect_languages
from .base import StoreError, check_embeddings
from .es_analysis import (
    BM25_SIMILARITY,
    LANGUAGE_FIELDS,
    analyzer_description,
    index_settings,
    language_field,
    mapping_for,
    text_property,
)
from .layouts import QWEN3, IndexLayout, LayoutChoice, LayoutError, resolve_layout

logger = logging.getLogger(__name__)

__all__ = ["BM25_SIMILARITY", "ElasticsearchStore", "index_settings", "mapping_for"]

# Analysis plugins that would segment CJK into dictionary words; noted when present, not used
# for CJK, since bigrams retrieve as well (docs/evaluation.md) and keep both backends in agreement
# (``analysis-icu`` segments Lao, Khmer and Myanmar, see ``es_analysis``).
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
        # ``_meta.qwen3_rag`` of the index, read once (kept up to date by our own writes).
        self._recorded: dict[str, Any] | None = None
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
            languages = self._passage_languages(chunks)
            actions = (
                {"_index": self.index, "_id": chunk.id, "_source": _to_source(chunk, vector, language)}
                for chunk, vector, language in zip(chunks, embeddings, languages, strict=True)
            )
            helpers.bulk(self.client, actions, chunk_size=200)
            self.client.indices.refresh(index=self.index)

    def bm25(self, query: str, top_k: int, sources: Sequence[str] | None = None) -> list[Passage]:
        if not query.strip():
            return []
        self._check_analysis()
        return self._search(query=self._bm25_query(query, sources), size=top_k)

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
        bm25 = {"standard": {"query": self._bm25_query(query, sources)}}
        with self._layout_errors():
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
        """Refuse BM25 on an index of ours that records another language than an explicit
        ``language`` setting names: the user asked for an analysis the index does not have.
        Elasticsearch analyses the query with the index's own analyzers, so an index of the same
        language (of any analysis version), or any index under ``auto``, is searched as it was built
        (one written before version 3 through ``text``); indices that record none (written by
        other tools, or before the analysis was recorded) are searched as they are."""
        if self._analysis_checked:
            return
        recorded = self._recorded_meta()
        expected = {} if self.language == "auto" else {"language": self.language}
        if recorded is not None and {key: recorded.get(key) for key in expected} != expected:
            raise StoreError(
                f"index {self.index!r} at {self._url} was built with the analysis {recorded} but the "
                f"settings ask for {expected}: set language (QWEN3_RAG_LANGUAGE) to "
                f"{recorded.get('language')!r}, or re-index into another index (--index)"
            )
        self._analysis_checked = True

    def _recorded_meta(self) -> dict[str, Any] | None:
        if self._recorded is None:
            with self._errors():
                mapping = self._mapping()  # through an alias too (`index --from`)
            self._recorded = mapping.get("_meta", {}).get("qwen3_rag") or {}
        return self._recorded or None

    def _index_languages(self) -> dict[str, int]:
        """Passages written per language, for an index of ours with one field per language."""
        recorded = self._recorded_meta() or {}
        return dict(recorded.get("languages") or {}) if recorded.get("language") == "auto" else {}

    def _bm25_query(self, query: str, sources: Sequence[str] | None) -> dict[str, Any]:
        """A ``match`` on the field of the query's language, detected among the index's (as the
        embedded store scores it in that language's part); the layout's text field otherwise."""
        languages = self._index_languages()
        if not languages:
            with self._layout_errors():
                return self.layout.bm25_query(query, sources)
        own = detect_language(query, among=list(languages))
        field = language_field(own if own in languages else max(languages, key=languages.__getitem__))
        with self._layout_errors():
            filters = self.layout.filters(sources)
        return {"bool": {"must": [{"match": {field: query}}], "filter": filters}}

    def _passage_languages(self, chunks: Sequence[Chunk]) -> list[str | None]:
        """The language field of each chunk (None: the index has no language fields), adding
        new languages to the mapping and the counts to ``_meta``.

        As the embedded store joins a language of fewer than `MIN_PART_SHARE` of the passages (or
        `MIN_PART_PASSAGES`) to the largest, a chunk whose language has too few passages, counting
        those already written, goes to the largest language's field: the embedded store decides
        on the whole corpus, this on what has been written so far.
        """
        from .memory import MIN_PART_PASSAGES, MIN_PART_SHARE

        recorded = self._recorded_meta() or {}
        if recorded.get("language") != "auto" or int(recorded.get("analysis", 0)) < 3:
            return [None] * len(chunks)
        counts = Counter(recorded.get("languages") or {})
        detected = detect_languages([chunk.text for chunk in chunks])
        counts.update(detected)
        floor = max(MIN_PART_SHARE * sum(counts.values()), MIN_PART_PASSAGES)
        largest = counts.most_common(1)[0][0]
        languages = [language if counts[language] >= floor else largest for language in detected]
        written = Counter(recorded.get("languages") or {})
        new = sorted(set(languages) - set(written))
        written.update(languages)
        meta = {**recorded, "languages": dict(written)}
        properties: dict[str, Any] = {}
        if new:
            plugins = self._plugins() if set(new) & {"lo", "km", "my"} else set()
            properties = {
                LANGUAGE_FIELDS: {"properties": {name: text_property(name, plugins) for name in new}}
            }
        with self._errors():
            self.client.indices.put_mapping(index=self.index, meta={"qwen3_rag": meta}, properties=properties)
        self._recorded = meta
        return languages

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
            response = self.client.search(
                index=self.index, source_excludes=[layout.vector_field, LANGUAGE_FIELDS], **body
            )
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
        plugins = self._plugins()
        present = sorted(plugins & CJK_PLUGINS)
        logger.info(
            "creating index %r at %s: text analysed with %s%s",
            self.index,
            self._url,
            analyzer_description(self.language),
            f" (plugins {', '.join(present)} present; CJK stays bigrams, as in the embedded store)"
            if present
            else "",
        )
        self.client.indices.create(
            index=self.index,
            mappings=mapping_for(dimension, language=self.language, plugins=plugins),
            settings=index_settings(k1=self.bm25_k1, b=self.bm25_b, language=self.language, plugins=plugins),
        )
        self._recorded = None
        self._analysis_checked = False

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


def _to_source(chunk: Chunk, vector: Sequence[float], language: str | None = None) -> dict[str, Any]:
    """The document of a chunk; under ``auto`` its text also goes to its language's field."""
    body: dict[str, Any] = {
        "text": chunk.text,
        "embedding": list(vector),
        "source": chunk.source,
        "position": chunk.position,
        "meta": chunk.meta,
    }
    if language is not None:
        body[LANGUAGE_FIELDS] = {language: chunk.text}
    return body
