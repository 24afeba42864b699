"""Embeddings and chunks of a benchmark corpus, cached on disk so that re-runs skip the model."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from qwen3_rag.ingest import Chunker
from qwen3_rag.records import Chunk, SourceText

CACHE_DIR = Path(os.environ.get("QWEN3_BENCH_CACHE", "/tmp/qwen3-retrieval-cache"))


def cached_embeddings(model: str, texts: list[str], kind: str) -> np.ndarray:
    """Normalised float32 embeddings of ``texts`` (``kind`` is "query" or "document"), from the
    cache when the same model already embedded the same texts."""
    digest = hashlib.sha256("\x00".join([model, kind, *texts]).encode()).hexdigest()[:24]
    path = CACHE_DIR / f"{kind}-{digest}.npy"
    if path.exists():
        return np.load(path)
    from qwen3_rag.embedding import Embedder

    embedder = Embedder(model, device="cpu", batch_size=64)
    encode = embedder.model.encode_query if kind == "query" else embedder.model.encode_document
    vectors = encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
    vectors = np.asarray(vectors, dtype=np.float32)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.save(path.with_suffix(".partial.npy"), vectors)
    os.replace(path.with_suffix(".partial.npy"), path)
    return vectors


def chunk_corpus(corpus: dict[str, str], size: int | None, overlap: int) -> list[Chunk]:
    """The corpus as the pipeline chunks it; ``size=None`` keeps each document whole."""
    if size is None:
        return [Chunk.create(text, doc_id, 0) for doc_id, text in corpus.items()]
    chunker = Chunker(size, overlap)
    return [chunk for doc_id, text in corpus.items() for chunk in chunker.split(SourceText(text, doc_id))]
