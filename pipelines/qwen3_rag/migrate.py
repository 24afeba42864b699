"""``qwen3-rerank index --from DATA_DIR --backend elasticsearch``: outgrow the embedded store
without re-embedding.

The chunks, their stored vectors and the analysis record (language, BM25 k1 and b) of an
embedded index are streamed from its memory maps into a new Elasticsearch index, which an alias
of the index name serves only once every chunk is in (`ElasticsearchStore.replace_all`). No
embedding model runs, except to read its dimension when an index written before the model was
recorded must be checked against it.

Example:
    >>> copy_to_elasticsearch(Settings.from_env(backend="elasticsearch"), Path("~/.cache/qwen3-rag"))
    CopyReport(chunks=15, seconds=0.4, index='qwen3-rag-20261204180000-1a2b3c', alias='qwen3-rag')
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .records import Chunk
from .settings import Settings
from .stores import StoreError
from .stores.memory import MemoryStore

logger = logging.getLogger(__name__)

# Rows read from the embedded store per batch: bounds the copy's memory whatever the corpus size.
EXPORT_BATCH_ROWS = 1000


@dataclass(frozen=True)
class CopyReport:
    """What a copy wrote: ``chunks`` into the concrete ``index``, now served as ``alias``."""

    chunks: int
    seconds: float
    index: str
    alias: str

    @property
    def chunks_per_second(self) -> float:
        return self.chunks / self.seconds if self.seconds > 0 else float("inf")


def copy_to_elasticsearch(settings: Settings, source_dir: Path, *, show_progress: bool = False) -> CopyReport:
    """Copy the embedded index ``settings.index_name`` under ``source_dir`` into Elasticsearch
    (``settings.es_url``, the same index name, served through an alias).

    Raises:
        StoreError: ``source_dir`` holds no such index, or it was embedded with another model or
            dimension than ``settings.embedding_model`` (queries would not match its vectors), or
            Elasticsearch refused the copy (the alias then still serves what it served before).
    """
    if settings.backend != "elasticsearch":
        raise ValueError(
            f"--from copies into Elasticsearch: add --backend elasticsearch (got {settings.backend!r})"
        )
    source = MemoryStore(Path(source_dir).expanduser(), settings.index_name)
    manifest = source.manifest()
    if manifest is None or not manifest["rows"]:
        raise StoreError(
            f"no embedded index {settings.index_name!r} in {source_dir} ({source.location} holds nothing): "
            "give the --data-dir it was indexed into, and its --index"
        )
    check_embedding_model(manifest, settings, source.location)
    from .stores.elasticsearch import ElasticsearchStore

    started = time.perf_counter()
    target = ElasticsearchStore.from_settings(settings)
    try:
        target.ping()
        with tqdm(total=manifest["rows"], desc="copying", unit="chunk", disable=not show_progress) as bar:
            index = target.replace_all(
                _batches(source),
                dimension=int(manifest["dimension"]),
                language=manifest["language"],
                bm25_k1=float(manifest["k1"]),
                bm25_b=float(manifest["b"]),
                meta=_provenance(manifest),
                on_written=bar.update,
            )
    finally:
        target.close()
        source.close()
    return CopyReport(manifest["rows"], time.perf_counter() - started, index, settings.index_name)


def check_embedding_model(manifest: dict[str, Any], settings: Settings, location: str) -> None:
    """Refuse a copy whose vectors the settings' embedding model did not make.

    The model recorded at indexing must be the settings' (queries are embedded with it); an
    index that records none (written before it was recorded) is checked by dimension only,
    which needs the model loaded (it embeds nothing), with a warning.
    """
    recorded, wanted, dimension = (
        manifest.get("embedding_model"),
        settings.embedding_model,
        manifest["dimension"],
    )
    if recorded is not None:
        if not _same_model(recorded, wanted):
            raise StoreError(
                f"{location} was embedded with {recorded!r} ({dimension} dimensions), but the embedding "
                f"model is {wanted!r}: queries would be embedded by another model than its passages. "
                f"Pass --embedding-model {recorded} (or set QWEN3_RAG_EMBEDDING_MODEL), or re-index"
            )
        return
    from .embedding import Embedder

    given = Embedder(wanted, device=settings.device).dimension
    if given != dimension:
        raise StoreError(
            f"{location} holds {dimension}-dimensional embeddings but the embedding model {wanted!r} "
            f"gives {given}: pass the --embedding-model it was indexed with"
        )
    logger.warning(
        "%s does not record its embedding model (indexed before it was recorded): only the "
        "dimension (%d) was checked against %r",
        location,
        dimension,
        wanted,
    )


def _same_model(recorded: str, wanted: str) -> bool:
    """The same model id, or the same local directory however it is spelled."""
    if recorded == wanted:
        return True
    first, second = Path(recorded).expanduser(), Path(wanted).expanduser()
    return first.is_dir() and second.is_dir() and first.resolve() == second.resolve()


def _batches(source: MemoryStore) -> Iterator[tuple[list[Chunk], list[list[float]]]]:
    for chunks, vectors in source.export(EXPORT_BATCH_ROWS):
        yield chunks, vectors.tolist()


def _provenance(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the Elasticsearch index records (``_meta.qwen3_rag``) besides its analysis."""
    recorded = {"dimension": int(manifest["dimension"]), "copied_from": "embedded"}
    if manifest.get("embedding_model"):
        recorded["embedding_model"] = manifest["embedding_model"]
    return recorded
