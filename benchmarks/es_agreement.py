"""Elasticsearch BM25 against the embedded store's on the same queries, for a slow cluster such as
the integration tests' stand-in: the Elasticsearch figures of docs/evaluation.md's per-language table.

    BENCH_ES_URL=http://127.0.0.1:PORT python benchmarks/es_agreement.py DATA SPLIT INDEX SECONDS [build]

Queries the set's judged queries in order until SECONDS have passed (``build`` first writes the corpus
into INDEX, replacing it; without it INDEX must hold the corpus as `languages.py` writes it), then
scores the embedded store on exactly the queries answered. Prints progress and one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from languages import DEPTH, _documents

from qwen3_rag.beir import load_beir
from qwen3_rag.evaluation import mean_metrics
from qwen3_rag.records import Chunk
from qwen3_rag.service import WRITE_BATCH_CHUNKS
from qwen3_rag.settings import Settings
from qwen3_rag.stores.elasticsearch import ElasticsearchStore
from qwen3_rag.stores.memory import MemoryStore


def main(folder: str, split: str, index: str, budget: float, build: bool) -> None:
    dataset = load_beir(Path(folder), split)
    chunks = [
        Chunk(f"{dataset.name}/{i}", t, f"{dataset.name}/{i}", 0, {}) for i, t in dataset.corpus.items()
    ]

    def write(store: ElasticsearchStore | MemoryStore) -> None:
        for start in range(0, len(chunks), WRITE_BATCH_CHUNKS):  # as `RagService` writes
            batch = chunks[start : start + WRITE_BATCH_CHUNKS]
            store.write(batch, np.ones((len(batch), 1), "f4").tolist())

    settings = Settings.from_env(
        {}, backend="elasticsearch", es_url=os.environ["BENCH_ES_URL"], index_name=index, language="auto"
    )
    es = ElasticsearchStore.from_settings(settings)
    if build:
        es.client.indices.delete(index=index, ignore_unavailable=True)
        es = ElasticsearchStore.from_settings(settings)
        started = time.perf_counter()
        write(es)
        print("es build s", round(time.perf_counter() - started, 1), flush=True)
    ranked: dict[str, list[str]] = {}
    started = time.perf_counter()
    for n, query in enumerate(dataset.judged_queries(None)):
        if time.perf_counter() - started > budget:
            break
        ranked[query] = _documents(es.bm25(dataset.queries[query], 3 * DEPTH), dataset.name)
        if n % 25 == 0:
            print("es", n, round(time.perf_counter() - started, 1), flush=True)
    seconds = (time.perf_counter() - started) / max(len(ranked), 1)
    done = list(ranked)
    with tempfile.TemporaryDirectory() as tmp:
        memory = MemoryStore(Path(tmp), "bench", language="auto")
        write(memory)
        embedded = {q: _documents(memory.bm25(dataset.queries[q], 3 * DEPTH), dataset.name) for q in done}
    qrels = {q: dataset.qrels[q] for q in done}
    es_metrics, memory_metrics = mean_metrics(qrels, ranked, done), mean_metrics(qrels, embedded, done)
    print(
        json.dumps(
            {
                "set": dataset.name,
                "queries": len(done),
                "of": len(dataset.judged_queries(None)),
                "es_ms_per_query": round(seconds * 1000),
                "es": {k: round(v, 4) for k, v in es_metrics.items()},
                "embedded": {k: round(v, 4) for k, v in memory_metrics.items()},
                "es_minus_embedded_ndcg10": round(es_metrics["nDCG@10"] - memory_metrics["nDCG@10"], 4),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), "build" in sys.argv[5:])
