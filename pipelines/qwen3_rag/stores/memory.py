"""The embedded store: BM25 from ``bm25s`` (Lucene's scorer, stemming and stop words per language)
and exact dense search on a float32 matrix, persisted as binary files under the data directory.

No server and no framework: one directory per index, ``data_dir/<index_name>/``, holding
generations. A write builds a new generation (records, vectors, BM25 index, and an HNSW index
from ``usearch`` when the corpus is large) and then points ``CURRENT`` at it, so readers in other
processes see either the old or the new index, never half of one. Searches open the files
lazily and memory-map them (``numpy`` ``mmap_mode``, ``bm25s`` ``mmap=True``, ``usearch`` views),
so opening a store of a million passages costs milliseconds and only the pages touched are read.

One process writes a store at a time (`locking.WriteLock`, an OS file lock in its directory, held
from reading the base generation to pointing ``CURRENT`` at the next), so no acknowledged write is
lost whatever runs at once; a generation is built under a ``partial-`` name and renamed when
complete. Each generation's manifest records its files' sizes and checksums (`integrity`): sizes
are compared on opening, checksums before a generation becomes the base of the next one and by
``qwen3-rerank check``, so a damaged generation is refused by name instead of saved as if whole.

Every write rebuilds the BM25 index (BM25's statistics are corpus-wide), so indexing many
batches goes through `MemoryStore.bulk`, which builds once at the end, as `RagService` does.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import mmap
import os
import shutil
import threading
import uuid
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..records import Chunk, Passage
from ..settings import (
    DEFAULT_ANN_THRESHOLD,
    DEFAULT_BM25_B,
    DEFAULT_BM25_K1,
    DEFAULT_LANGUAGE,
    DEFAULT_WRITE_LOCK_TIMEOUT_S,
)
from .analysis import ANALYSIS_VERSION, Analyzer, check_language, detect_language, detect_languages
from .base import IndexUnavailable, StoreError, check_embeddings
from .integrity import MANIFEST, checksum_problems, file_records, size_problems
from .locking import WriteLock

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
# How a query meets an index of several languages: in the part of its own language, detected
# among the index's (``detect``, the default), or analysed under each and scored in every part
# (``all``).
QueryLanguages = Literal["all", "detect"]
# What a language needs for a BM25 part of its own: this share of an index's passages, and this
# many (BM25's statistics over a handful of passages mean little, and short texts are where
# language detection errs).
MIN_PART_SHARE = 0.01
MIN_PART_PASSAGES = 20
# HNSW search breadth: recall@100 against exact search on SciFact's MiniLM vectors was 0.972 at
# usearch's default of 64, 0.983 at 128 and 0.997 at 256 (benchmarks/retrieval.py --hnsw).
HNSW_EXPANSION_SEARCH = 256
_CURRENT = "CURRENT"
_PARTIAL = "partial-"  # a generation being written; renamed to its ``gen-`` name when complete
_RECOVER = "Delete the file and run `qwen3-rerank index` again."
_REMEDY_DAMAGED = (
    "run `qwen3-rerank check` to list every damaged file, then delete that directory and run "
    "`qwen3-rerank index` again"
)


@dataclass(frozen=True)
class Bm25Params:
    """What the BM25 index depends on besides the texts: the analysis (its version and the
    ``language`` setting: ``auto`` detects each passage's language) and k1/b."""

    language: str = DEFAULT_LANGUAGE
    k1: float = DEFAULT_BM25_K1
    b: float = DEFAULT_BM25_B
    analysis: int = ANALYSIS_VERSION

    def __post_init__(self) -> None:
        check_language(self.language)
        if not self.k1 >= 0:
            raise ValueError(f"bm25_k1 must be >= 0, got {self.k1!r}")
        if not 0 <= self.b <= 1:
            raise ValueError(f"bm25_b must be between 0 and 1, got {self.b!r}")


class MemoryStore:
    """Chunks in ``data_dir/<index_name>/``, searched in process.

    Under ``language="auto"`` each passage's language is detected and the BM25 index holds one
    part per language (each scored with its own statistics, as an Elasticsearch field per
    language is); a query's language is detected among the languages the index holds and it is
    scored in that language's part (``query_languages = "all"`` analyses it under each and
    scores it in every part: on a mixed index of ten languages English questions fell from 0.93
    to 0.78 nDCG@10 that way, docs/evaluation.md).

    The store is re-read whenever another process committed a new generation, so a server
    started before ``qwen3-rerank index`` ran sees the new passages without a restart. Writers
    take turns, across processes (`WriteLock`): a second one waits up to
    ``write_lock_timeout_s``, then gets `StoreBusy` naming the first. An index built with another
    analysis (an older version's, or another ``language``) is searched through a BM25 index
    rebuilt in memory from its texts, with a warning to re-index, never with terms it does not
    hold.

    Example:
        >>> store = MemoryStore(Path("~/.cache/qwen3-rag").expanduser(), "qwen3-rag")
        >>> with store.bulk():
        ...     store.write(chunks, embeddings)
        >>> store.bm25("boiling point of water", top_k=5)
    """

    def __init__(
        self,
        data_dir: Path,
        index_name: str,
        *,
        language: str = DEFAULT_LANGUAGE,
        bm25_k1: float = DEFAULT_BM25_K1,
        bm25_b: float = DEFAULT_BM25_B,
        ann_threshold: int = DEFAULT_ANN_THRESHOLD,
        write_lock_timeout_s: float = DEFAULT_WRITE_LOCK_TIMEOUT_S,
        embedding_model: str | None = None,
    ) -> None:
        self.directory = Path(data_dir) / index_name
        # Recorded in each generation's manifest, so that a copy to Elasticsearch (`export`) can
        # refuse to pair these vectors with queries embedded by another model.
        self.embedding_model = embedding_model
        self.location = str(self.directory)
        self.params = Bm25Params(language, bm25_k1, bm25_b)
        self.ann_threshold = ann_threshold
        self.query_languages: QueryLanguages = "detect"
        self._lock = threading.RLock()
        self._generation: _Generation | None = None
        self._version: tuple[int, int, int] | None = None
        self._table: dict[str, tuple[tuple[Any, ...], np.ndarray]] | None = None
        self._write_lock = WriteLock(self.directory, timeout_s=write_lock_timeout_s)
        self._write_depth = 0
        self._dirty = False
        # The generation this object last wrote or verified whole: its checksums need no re-reading.
        self._verified: str | None = None

    def write(self, chunks: Sequence[Chunk], embeddings: Sequence[Sequence[float]]) -> None:
        dimension = check_embeddings(chunks, embeddings)
        if not len(chunks):
            return
        vectors = _normalised(np.asarray(embeddings, dtype=np.float32).reshape(len(chunks), dimension))
        with self._writing():
            table = self._writable()
            existing = next(iter(table.values()), None)
            if existing is not None and existing[1].shape[0] != dimension:
                raise StoreError(self._dimension_error(existing[1].shape[0], dimension))
            written = {chunk.source for chunk in chunks}
            keep = {chunk.id for chunk in chunks}
            for chunk_id in [key for key, (row, _) in table.items() if row[2] in written and key not in keep]:
                del table[chunk_id]
            for chunk, vector in zip(chunks, vectors, strict=True):
                meta = {**chunk.meta, "position": chunk.position}
                table[chunk.id] = ((chunk.id, chunk.text, chunk.source, chunk.position, meta), vector)
            self._dirty = True

    @contextlib.contextmanager
    def bulk(self) -> Iterator[None]:
        """Group writes: the indices are built and saved once, when the block ends; the write
        lock is held for the whole block, so its base is not changed under it by another writer."""
        with self._writing():
            yield

    def bm25(self, query: str, top_k: int, sources: Sequence[str] | None = None) -> list[Passage]:
        if not query.strip():
            return []
        with self._lock:
            generation = self._current()
            if generation is None:
                return []
            scores = generation.bm25(self.params).scores(query, self.query_languages)
            if scores is None:
                return []
            return generation.passages(_top(scores, top_k, generation.mask(sources), positive=True))

    def knn(self, vector: Sequence[float], top_k: int, sources: Sequence[str] | None = None) -> list[Passage]:
        with self._lock:
            generation = self._current()
            if generation is None:
                return []
            if len(vector) != generation.dimension:
                raise StoreError(self._dimension_error(generation.dimension, len(vector)))
            query = _normalised(np.asarray(vector, dtype=np.float32)[None, :])[0]
            mask = generation.mask(sources)
            if mask is None and generation.ann is not None:
                return generation.passages(generation.ann_search(query, top_k))
            if mask is None:
                return generation.passages(_top(_cosines(generation.vectors, query), top_k, None))
            rows = np.flatnonzero(mask)
            hits = _top(_cosines(generation.vectors[rows], query), top_k, None)
            return generation.passages([(int(rows[row]), score) for row, score in hits])

    def prune(self, prefix: str, keep: Collection[str]) -> int:
        with self._writing():
            table = self._writable()
            gone = [
                key for key, (row, _) in table.items() if row[2].startswith(prefix) and row[2] not in keep
            ]
            for key in gone:
                del table[key]
            self._dirty = self._dirty or bool(gone)
            return len(gone)

    def count(self) -> int:
        with self._lock:
            generation = self._current()
            return 0 if generation is None else generation.rows

    def ping(self) -> None:
        """The embedded store is always reachable; this checks that its current generation is
        complete (`IndexUnavailable` otherwise), for readiness. A write in progress holds the
        lock and is not waited for: the generation it replaces was checked when it was opened."""
        if self._lock.acquire(blocking=False):
            try:
                generation = self._current()
                if generation is not None:
                    generation.check()  # again: files can go after the generation was opened
            finally:
                self._lock.release()

    def verify(self) -> Verified:
        """Check the current generation whole: every file's size and checksum, and that its
        parts agree (rows, offsets); what ``qwen3-rerank check`` runs.

        Raises:
            IndexUnavailable: The generation is damaged; the message names each damaged file.
        """
        with self._lock:
            generation = self._current()
            if generation is None:
                self._check_not_orphaned()
                return Verified(self.location, None, 0, 0, 0, checksums=False)
            verified = generation.verify()
            self._verified = generation.path.name
            return verified

    def close(self) -> None:
        """Release the memory maps; every write is already on disk."""
        with self._lock:
            self._generation = None
            self._version = None

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """One write (or a bulk of them): the write lock from reading the base to the commit.

        The base is read again once the lock is held, so it includes whatever the writer before
        committed; the new generation is committed when the outermost block ends, if it changed.
        """
        with self._lock:
            if self._write_depth == 0:
                self._write_lock.acquire()
                self._table, self._dirty = None, False
            self._write_depth += 1
            try:
                yield
            finally:
                self._write_depth -= 1
                if self._write_depth == 0:
                    try:
                        if self._dirty:
                            self._commit()
                    finally:
                        self._table, self._dirty = None, False
                        self._write_lock.release()

    def manifest(self) -> dict[str, Any] | None:
        """The current generation's manifest (rows, dimension, the analysis's language, k1, b and
        version, and the embedding model where it was recorded); None when nothing is indexed."""
        with self._lock:
            generation = self._current()
            return None if generation is None else dict(generation.manifest)

    def export(self, batch_size: int = 500) -> Iterator[tuple[list[Chunk], np.ndarray]]:
        """Every chunk with its stored (unit-length, float32) vector, ``batch_size`` rows at a
        time, in row order: what a copy to another store needs, without re-embedding.

        The generation current at the first batch is read to the end, from its memory maps, so a
        commit by another process meanwhile neither mixes two versions nor holds the whole index
        in memory.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        with self._lock:
            generation = self._current()
        if generation is None:
            return
        generation.pin()
        for start in range(0, generation.rows, batch_size):
            rows = np.arange(start, min(start + batch_size, generation.rows))
            yield generation.chunks(rows), np.asarray(generation.vectors[rows])

    def _current(self) -> _Generation | None:
        """The committed generation, re-opened when another process committed a newer one."""
        version = _file_version(self.directory / _CURRENT)
        if version != self._version or (self._generation is None and version is not None):
            self._version = version
            self._generation = None
            name = _current_name(self.directory)
            if name is not None:
                self._generation = _Generation.open(self.directory / name, self.params)
        return self._generation

    def _writable(self) -> dict[str, tuple[tuple[Any, ...], np.ndarray]]:
        """All passages by id, with their vectors (views into the memory map until rewritten).

        The base generation is verified whole first (checksums, unless this object wrote or
        verified it): a damaged generation is never the base of a new one."""
        if self._table is None:
            generation = self._current()
            if generation is None:
                self._check_not_orphaned()
            elif generation.path.name != self._verified:
                generation.verify()
                self._verified = generation.path.name
            self._table = {} if generation is None else generation.table()
        return self._table

    def _check_not_orphaned(self) -> None:
        """Refuse to start from nothing when ``CURRENT`` is gone but generations are there."""
        if any((path / MANIFEST).is_file() for path in self.directory.glob("gen-*")):
            raise IndexUnavailable(
                "the embedded store has generations but no CURRENT file naming the committed one",
                location=self.location,
                remedy="delete that directory and run `qwen3-rerank index` again",
            )

    def _commit(self) -> None:
        """Write the next generation and point ``CURRENT`` at it (under the write lock)."""
        table, self._table = self._table or {}, None
        rows = [row for row, _ in table.values()]
        dimension = next(iter(table.values()))[1].shape[0] if table else 0
        vectors = np.stack([vector for _, vector in table.values()]) if table else np.zeros((0, 0), "f4")
        name = _write_generation(
            self.directory,
            rows,
            vectors,
            dimension,
            self.params,
            self.ann_threshold,
            embedding_model=self.embedding_model,
        )
        previous = _current_name(self.directory)
        _replace_text(self.directory / _CURRENT, name)
        self._verified = name
        self._remove_old_generations(keep={name, previous or ""})
        self._generation, self._version = None, None

    def _remove_old_generations(self, keep: set[str]) -> None:
        """Under the write lock: generations provably finished (a manifest) and unreferenced
        (neither ``CURRENT`` nor the one it replaced, which a reader may still be opening) go, and
        so do ``partial-`` folders, which only a writer holding this lock builds: one that died."""
        assert self._write_lock.held, "generations are removed under the write lock only"
        for path in self.directory.glob("gen-*"):
            if path.name not in keep and (path / MANIFEST).is_file():
                shutil.rmtree(path, ignore_errors=True)
        for path in self.directory.glob(f"{_PARTIAL}gen-*"):
            shutil.rmtree(path, ignore_errors=True)

    def _dimension_error(self, stored: int, given: int) -> str:
        return (
            f"{self.directory} holds {stored}-dimensional embeddings but the embedding model gives "
            f"{given}; use the model it was indexed with, or delete the directory and re-index"
        )


@dataclass(frozen=True)
class Verified:
    """What `MemoryStore.verify` checked: the generation (``None``: the store is empty), its
    passages, files and bytes, and whether checksums were compared (older stores record none)."""

    location: str
    generation: str | None
    rows: int
    files: int
    bytes: int
    checksums: bool


class _Generation:
    """One committed version of the store, read lazily through memory maps."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        # Sizes and checksums by file name; absent from generations written before they were recorded.
        self.files: dict[str, dict[str, Any]] | None = manifest.get("files")
        self.manifest = manifest
        self.rows = int(manifest["rows"])
        self.dimension = int(manifest["dimension"])
        # Indices written before the analysis was recorded hold version 1 (words only).
        analysis = int(manifest.get("analysis", 1))
        self.built_with = Bm25Params(manifest["language"], manifest["k1"], manifest["b"], analysis)
        self.has_ann = bool(manifest.get("ann"))
        # Indices written before version 3 hold one BM25 index, in ``bm25``, of all rows.
        self.partitions: list[dict[str, Any]] = manifest.get(
            "bm25_partitions", [{"language": manifest["language"], "path": "bm25", "rows": self.rows}]
        )
        self.languages: dict[str, int] = manifest.get("languages", {})
        self._rebuilt: dict[Bm25Params, _Bm25] = {}

    @classmethod
    def open(cls, path: Path, params: Bm25Params) -> _Generation:
        try:
            manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
            if not isinstance(manifest, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as error:
            raise StoreError(
                f"cannot open the embedded store {path}: its {MANIFEST} is unreadable ({error}). {_RECOVER}"
            ) from error
        if manifest.get("format") != FORMAT_VERSION:
            raise StoreError(
                f"{path} has format {manifest.get('format')!r}, not {FORMAT_VERSION}. {_RECOVER}"
            )
        generation = cls(path, manifest)
        generation.check()
        return generation

    def check(self) -> None:
        """Raise `IndexUnavailable` naming the files this generation lacks or holds at another
        size than its manifest records (it is never used half); a ``stat`` per file."""
        needed = [*_GENERATION_FILES, *(["hnsw.usearch"] if self.has_ann else [])]
        needed += [f"{part['path']}/{name}" for part in self.partitions[1:] for name in _BM25_FILES]
        needed += [f"{part['path']}/rows.npy" for part in self.partitions if part["rows"] != self.rows]
        missing = [name for name in needed if not (self.path / name).is_file()]
        if missing:
            raise IndexUnavailable(
                f"the embedded store's current generation {self.path.name} lacks {', '.join(missing)}",
                location=str(self.path.parent),
                remedy="delete that directory and run `qwen3-rerank index` again",
            )
        self._refuse(size_problems(self.path, self.files or {}))

    def verify(self) -> Verified:
        """`check`, then every checksum (when recorded) and the consistency of the parts."""
        self.check()
        self._refuse(checksum_problems(self.path, self.files or {}))
        self._refuse(self._consistency_problems())
        files = [path for path in self.path.rglob("*") if path.is_file()]
        size = sum(path.stat().st_size for path in files)
        return Verified(
            str(self.path.parent), self.path.name, self.rows, len(files), size, checksums=bool(self.files)
        )

    def _consistency_problems(self) -> list[str]:
        """Disagreements between the parts (what finds a truncated file in a store without
        checksums): row counts, offsets against their data file, vectors against the dimension."""
        problems = []
        try:
            for name, column in (("ids.npy", self._ids), ("positions.npy", self._positions)):
                if len(column) != self.rows:
                    problems.append(f"{name} holds {len(column)} rows, the manifest {self.rows}")
            if len(self._source_codes) != self.rows:
                problems.append(
                    f"source_codes.npy holds {len(self._source_codes)} rows, the manifest {self.rows}"
                )
            elif self.rows and int(np.max(self._source_codes)) >= len(self._sources):
                problems.append("source_codes.npy names sources that sources.json lacks")
            problems += self._texts.problems(self.rows) + self._metas.problems(self.rows)
            if self.rows and self.vectors.shape != (self.rows, self.dimension):
                problems.append(
                    f"vectors.npy has shape {self.vectors.shape}, not ({self.rows}, {self.dimension})"
                )
            _ = self._saved_bm25
        except IndexUnavailable as error:
            problems.append(error.reason.split(" is damaged: ", 1)[-1])
        return problems

    def _refuse(self, problems: list[str]) -> None:
        if problems:
            raise IndexUnavailable(
                f"the embedded store's current generation {self.path.name} is damaged: {'; '.join(problems)}",
                location=str(self.path.parent),
                remedy=_REMEDY_DAMAGED,
            )

    def _load(self, name: str) -> np.ndarray:
        """A memory-mapped array, or `IndexUnavailable` naming the file when it cannot be read."""
        return self._reading(name, lambda: np.load(self.path / name, mmap_mode="r"))

    def _reading(self, name: str, read: Any) -> Any:
        try:
            return read()
        except (OSError, ValueError, EOFError, KeyError, TypeError) as error:
            self._refuse([f"cannot read {name} ({type(error).__name__}: {error})"])

    @cached_property
    def vectors(self) -> np.ndarray:
        return self._load("vectors.npy")

    @cached_property
    def _ids(self) -> np.ndarray:
        return self._load("ids.npy")

    @cached_property
    def _positions(self) -> np.ndarray:
        return self._load("positions.npy")

    @cached_property
    def _texts(self) -> _Blobs:
        return self._reading("texts.offsets.npy or texts.bin", lambda: _Blobs(self.path, "texts"))

    @cached_property
    def _metas(self) -> _Blobs:
        return self._reading("metas.offsets.npy or metas.bin", lambda: _Blobs(self.path, "metas"))

    @cached_property
    def _source_codes(self) -> np.ndarray:
        return self._load("source_codes.npy")

    @cached_property
    def _sources(self) -> list[str]:
        return self._reading(
            "sources.json", lambda: list(json.loads((self.path / "sources.json").read_text(encoding="utf-8")))
        )

    @cached_property
    def _source_names(self) -> dict[str, int]:
        return {name: code for code, name in enumerate(self._sources)}

    def bm25(self, params: Bm25Params) -> _Bm25:
        """The BM25 index for ``params``: the saved one, or one rebuilt in memory when the store
        was indexed with another analysis or k1/b (the passages need not be re-embedded), since
        the saved one holds terms that the query's analysis would not produce."""
        if params == self.built_with:
            return self._saved_bm25
        if params not in self._rebuilt:
            logger.warning(
                "%s was indexed with %s; searching a BM25 index rebuilt in memory for %s "
                "(run `qwen3-rerank index` again to save it)",
                self.path,
                self.built_with,
                params,
            )
            texts = self._texts.decoded(np.arange(self.rows))
            self._rebuilt[params] = _build_bm25(texts, params)
        return self._rebuilt[params]

    @cached_property
    def _saved_bm25(self) -> _Bm25:
        return self._reading("bm25/", self._load_bm25_parts)

    def _load_bm25_parts(self) -> _Bm25:
        import bm25s

        parts = []
        for part in self.partitions:
            path = self.path / part["path"]
            rows = np.load(path / "rows.npy", mmap_mode="r") if part["rows"] != self.rows else None
            parts.append(_Part(part["language"], bm25s.BM25.load(str(path), mmap=True), rows))
        return _Bm25(parts, self.rows)

    @cached_property
    def ann(self) -> Any:
        if not self.has_ann:
            return None
        from usearch.index import Index

        index = Index.restore(str(self.path / "hnsw.usearch"), view=True)
        # The breadth is not saved with the index: restored, it would search at usearch's 64.
        index.expansion_search = HNSW_EXPANSION_SEARCH
        return index

    def ann_search(self, query: np.ndarray, top_k: int) -> list[tuple[int, float]]:
        matches = self.ann.search(query, min(top_k, self.rows))
        pairs = zip(matches.keys, matches.distances, strict=True)
        return [(int(key), 1.0 - float(distance)) for key, distance in pairs]

    def records(self, rows: Sequence[int]) -> list[tuple[str, str, str, int, dict[str, Any]]]:
        """(id, text, source, position, meta) of each row, read from the memory maps.

        Columns are gathered for all rows at once (one numpy fancy index per column), since a
        query reads hundreds of passages and per-element access to a memory map is slow.
        """
        index = np.asarray(rows, dtype=np.int64)
        ids, positions = self._ids[index].tolist(), self._positions[index].tolist()
        sources = [self._sources[code] for code in self._source_codes[index].tolist()]
        texts, metas = self._texts.decoded(index), self._metas.raw_many(index)
        return [
            (chunk_id, text, source, position, {**_meta_of(raw_meta), "position": position})
            for chunk_id, text, source, position, raw_meta in zip(
                ids, texts, sources, positions, metas, strict=True
            )
        ]

    def pin(self) -> None:
        """Open every file now: a reader holding the maps keeps reading this generation even if a
        later commit removes its directory."""
        for name in ("vectors", "_ids", "_positions", "_texts", "_metas", "_source_codes", "_sources"):
            getattr(self, name)

    def chunks(self, rows: np.ndarray) -> list[Chunk]:
        """The chunks of ``rows`` as they were written (``meta`` without the position)."""
        ids, positions = self._ids[rows].tolist(), self._positions[rows].tolist()
        sources = [self._sources[code] for code in self._source_codes[rows].tolist()]
        texts, metas = self._texts.decoded(rows), self._metas.raw_many(rows)
        return [
            Chunk(chunk_id, text, source, position, _meta_of(raw_meta))
            for chunk_id, text, source, position, raw_meta in zip(
                ids, texts, sources, positions, metas, strict=True
            )
        ]

    def mask(self, sources: Sequence[str] | None) -> np.ndarray | None:
        """Rows from ``sources`` (None: no restriction)."""
        if not sources:
            return None
        codes = [self._source_names[name] for name in sources if name in self._source_names]
        return np.isin(self._source_codes, np.asarray(codes, dtype=np.int32))

    def passages(self, hits: Sequence[tuple[int, float]]) -> list[Passage]:
        records = self.records([row for row, _ in hits])
        return [
            Passage(chunk_id, text, source, score, rank, meta)
            for rank, ((chunk_id, text, source, _position, meta), (_row, score)) in enumerate(
                zip(records, hits, strict=True), start=1
            )
        ]

    def table(self) -> dict[str, tuple[tuple[Any, ...], np.ndarray]]:
        records = self.records(range(self.rows))
        return {record[0]: (record, self.vectors[row]) for row, record in enumerate(records)}


# What `_Generation` reads besides the manifest (``hnsw.usearch`` too when the manifest says so).
_GENERATION_FILES = (
    "ids.npy",
    "positions.npy",
    "texts.bin",
    "texts.offsets.npy",
    "metas.bin",
    "metas.offsets.npy",
    "source_codes.npy",
    "sources.json",
    "vectors.npy",
    "bm25/params.index.json",
    "bm25/vocab.index.json",
    "bm25/data.csc.index.npy",
    "bm25/indices.csc.index.npy",
    "bm25/indptr.csc.index.npy",
)
# The files of each further BM25 part (``bm25-<language>/``) of an index of several languages.
_BM25_FILES = tuple(name.removeprefix("bm25/") for name in _GENERATION_FILES if name.startswith("bm25/"))


def _write_generation(
    directory: Path,
    rows: Sequence[tuple[Any, ...]],
    vectors: np.ndarray,
    dimension: int,
    params: Bm25Params,
    ann_threshold: int,
    *,
    embedding_model: str | None = None,
) -> str:
    """Write every file of a new generation, then the manifest with their sizes and checksums,
    under a ``partial-`` name renamed when complete (so every ``gen-`` folder is whole); returns
    its directory name."""
    numbers = [int(path.name.split("-")[1]) for path in directory.glob("gen-*") if path.name.count("-") == 2]
    name = f"gen-{max(numbers, default=0) + 1:06d}-{uuid.uuid4().hex[:8]}"
    path = directory / f"{_PARTIAL}{name}"
    path.mkdir(parents=True)
    np.save(path / "ids.npy", np.asarray([row[0] for row in rows], dtype=np.str_))
    np.save(path / "positions.npy", np.asarray([row[3] for row in rows], dtype=np.int64))
    _Blobs.write(path, "texts", [row[1].encode() for row in rows])
    _Blobs.write(path, "metas", [_meta_bytes(row[4]) for row in rows])
    names: dict[str, int] = {}
    codes = np.asarray([names.setdefault(row[2], len(names)) for row in rows], dtype=np.int32)
    np.save(path / "source_codes.npy", codes)
    (path / "sources.json").write_text(json.dumps(list(names), ensure_ascii=False), encoding="utf-8")
    np.save(path / "vectors.npy", vectors.astype(np.float32, copy=False))
    bm25 = _build_bm25([row[1] for row in rows], params)
    partitions = bm25.save(path)
    ann = len(rows) >= ann_threshold > 0
    if ann:
        _build_ann(vectors).save(str(path / "hnsw.usearch"))
    manifest = {
        "format": FORMAT_VERSION,
        "rows": len(rows),
        "dimension": dimension,
        "language": params.language,
        "k1": params.k1,
        "b": params.b,
        "analysis": params.analysis,
        "ann": ann,
        "languages": bm25.languages,
        "bm25_partitions": partitions,
        "files": file_records(path),
    }
    if embedding_model:
        manifest["embedding_model"] = embedding_model
    (path / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    os.replace(path, directory / name)
    return name


class _Blobs:
    """Variable-length byte strings in one file, with their offsets: row ``i`` is one slice of
    a memory map, so reading a passage decodes that passage only."""

    def __init__(self, path: Path, name: str) -> None:
        self._name = name
        self._offsets = np.load(path / f"{name}.offsets.npy", mmap_mode="r")
        with (path / f"{name}.bin").open("rb") as file:
            empty = os.fstat(file.fileno()).st_size == 0
            self._data = b"" if empty else mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)

    def raw_many(self, rows: np.ndarray) -> list[bytes]:
        data = self._data
        starts, ends = self._offsets[rows].tolist(), self._offsets[rows + 1].tolist()
        return [data[start:end] for start, end in zip(starts, ends, strict=True)]

    def decoded(self, rows: np.ndarray) -> list[str]:
        return [blob.decode() for blob in self.raw_many(rows)]

    def problems(self, rows: int) -> list[str]:
        """Where the offsets disagree with the rows or with the data file's size."""
        name = self._name
        if len(self._offsets) != rows + 1:
            return [f"{name}.offsets.npy holds {len(self._offsets)} offsets for {rows} rows"]
        end, size = int(self._offsets[-1]), len(self._data)
        if int(self._offsets[0]) != 0 or end != size or bool(np.any(np.diff(self._offsets) < 0)):
            return [f"{name}.bin is {size} bytes, its offsets end at {end}"]
        return []

    @staticmethod
    def write(path: Path, name: str, blobs: Sequence[bytes]) -> None:
        offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
        np.cumsum([len(blob) for blob in blobs], out=offsets[1:])
        with (path / f"{name}.bin").open("wb") as file:
            for blob in blobs:
                file.write(blob)
        np.save(path / f"{name}.offsets.npy", offsets)


def _meta_of(raw: bytes) -> dict[str, Any]:
    return json.loads(raw) if raw != b"{}" else {}


def _meta_bytes(meta: dict[str, Any]) -> bytes:
    extra = {key: value for key, value in meta.items() if key != "position"}
    return json.dumps(extra, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class _Part:
    """The BM25 index of one language's passages; ``rows`` maps its documents to the store's
    rows (None: it holds every row, in order)."""

    language: str
    index: Any
    rows: np.ndarray | None

    def scores(self, query: str) -> np.ndarray | None:
        """The BM25 score of each of its documents for ``query`` analysed in its language."""
        terms = _analyzer(self.language).tokens([query])[0]
        vocabulary = self.index.vocab_dict
        ids = [vocabulary[term] for term in terms if term in vocabulary]
        return self.index.get_scores_from_ids(ids) if ids else None


class _Bm25:
    """The BM25 index of a generation: one `_Part` per language (one in all for an explicit
    ``language``, or a corpus in one language)."""

    def __init__(self, parts: Sequence[_Part], rows: int) -> None:
        self.parts = list(parts)
        self.rows = rows

    @property
    def languages(self) -> dict[str, int]:
        """Passages per language, most first."""
        return {part.language: self.rows if part.rows is None else len(part.rows) for part in self.parts}

    def scores(self, query: str, mode: QueryLanguages = "all") -> np.ndarray | None:
        """Each row's score for ``query`` (None: no term of it is in the index). Each row is in
        one part, so a row's score is its language's BM25 score."""
        parts = self.parts
        if mode == "detect" and len(parts) > 1:
            own = detect_language(query, among=[part.language for part in parts])
            parts = [part for part in parts if part.language == own] or parts
        if len(parts) == 1 and parts[0].rows is None:
            return parts[0].scores(query)
        total: np.ndarray | None = None
        for part in parts:
            scores = part.scores(query)
            if scores is None:
                continue
            if total is None:
                total = np.zeros(self.rows, dtype=np.float32)
            total[part.rows if part.rows is not None else slice(None)] = scores
        return total

    def save(self, path: Path) -> list[dict[str, Any]]:
        """Save each part (the first in ``bm25``, the others in ``bm25-<language>``); returns
        what the manifest records of them."""
        recorded = []
        for number, part in enumerate(self.parts):
            name = "bm25" if number == 0 else f"bm25-{part.language}"
            part.index.save(str(path / name))
            if part.rows is not None:
                np.save(path / name / "rows.npy", part.rows)
            rows = self.rows if part.rows is None else len(part.rows)
            recorded.append({"language": part.language, "path": name, "rows": rows})
        return recorded


@functools.lru_cache(maxsize=64)
def _analyzer(language: str) -> Analyzer:
    """One analyzer per language for the process (its stemmer memoises words)."""
    return Analyzer(language)


def _build_bm25(texts: Sequence[str], params: Bm25Params) -> _Bm25:
    """BM25 parts by language: under ``auto`` the detected language of each text, most passages
    first; otherwise one part in ``params.language``."""
    auto = params.language == "auto"
    languages = detect_languages(texts) if auto else [params.language] * len(texts)
    counts = Counter(languages)
    if len(counts) > 1:
        languages = _join_small_parts(languages, counts)
        counts = Counter(languages)
    if len(counts) <= 1:
        language = next(iter(counts), "english" if params.language == "auto" else params.language)
        return _Bm25([_Part(language, _index_of(texts, language, params), None)], len(texts))
    parts = []
    for language, _count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        rows = np.asarray([row for row, each in enumerate(languages) if each == language], dtype=np.int64)
        index = _index_of([texts[row] for row in rows.tolist()], language, params)
        parts.append(_Part(language, index, rows))
    return _Bm25(parts, len(texts))


def _join_small_parts(languages: list[str], counts: Counter[str]) -> list[str]:
    """Languages of fewer than `MIN_PART_SHARE` of the passages, or `MIN_PART_PASSAGES`, joined
    to the largest one: BM25 statistics of a handful of passages (a passage of English quoting
    Greek, read as Greek) would make their terms all but unfindable."""
    largest = counts.most_common(1)[0][0]
    floor = max(MIN_PART_SHARE * len(languages), MIN_PART_PASSAGES)
    return [language if counts[language] >= floor else largest for language in languages]


def _index_of(texts: Sequence[str], language: str, params: Bm25Params) -> Any:
    import bm25s

    index = bm25s.BM25(k1=params.k1, b=params.b, method="lucene")
    tokens = _analyzer(language).tokens(texts)
    if not any(tokens):
        # bm25s needs one term at least: a corpus with none (empty, or only numbers and stop
        # words) gets a placeholder term that no query can match.
        tokens = [[""] for _ in texts] or [[""]]
    index.index(tokens, show_progress=False)
    return index


def _build_ann(vectors: np.ndarray) -> Any:
    from usearch.index import Index

    index = Index(ndim=vectors.shape[1], metric="ip", dtype="f32", connectivity=16, expansion_add=128)
    index.add(np.arange(len(vectors), dtype=np.uint64), vectors, threads=os.cpu_count() or 1)
    return index


def _top(
    scores: np.ndarray, top_k: int, mask: np.ndarray | None, *, positive: bool = False
) -> list[tuple[int, float]]:
    """The ``top_k`` best rows, best first, ties by row; ``positive`` drops scores <= 0 (no match)."""
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    k = min(top_k, len(scores))
    if k <= 0:
        return []
    candidates = np.argpartition(-scores, k - 1)[:k]
    order = candidates[np.lexsort((candidates, -scores[candidates]))]
    floor = 0.0 if positive else -np.inf
    return [(int(row), float(scores[row])) for row in order if scores[row] > floor]


def _cosines(matrix: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``matrix @ query`` for unit rows, on the calling thread.

    ``einsum`` runs numpy's own SIMD loop rather than multi-threaded BLAS: one matrix-vector
    product is memory-bound, and BLAS threads that wait on each other (or on the embedder's
    threads) made a query 3-5x slower on two cores, while concurrent queries use the other core.
    """
    return np.einsum("ij,j->i", matrix, query)


def _normalised(vectors: np.ndarray) -> np.ndarray:
    """Unit-length float32 rows (zero rows stay zero), so a dot product is the cosine."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms == 0, 1, norms)).astype(np.float32, copy=False)


def _file_version(path: Path) -> tuple[int, int, int] | None:
    """Identifies one version of a file: every commit replaces it with a new inode."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def _current_name(directory: Path) -> str | None:
    """The generation ``CURRENT`` names, or None when there is no ``CURRENT`` yet."""
    try:
        return (directory / _CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None


def _replace_text(path: Path, text: str) -> None:
    partial = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
