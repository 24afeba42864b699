"""The embedded-to-Elasticsearch copy (``qwen3-rerank index --from``) on a BEIR set: its speed
against re-indexing and against elasticsearch-py's ``parallel_bulk``, and its retrieval quality.

Needs an embedded index of the set, as ``qwen3-rerank eval`` builds it (``beir-<name>`` under
``--data-dir``), and Elasticsearch at ES_URL. Prints, in chunks per second:

* ``copy``: `copy_to_elasticsearch` (what ``index --from DATA_DIR --backend elasticsearch`` runs),
  from reading the embedded store to the alias swap;
* ``parallel_bulk``: the same documents (the same export, the same mapping, settings and ``_source``)
  written by ``helpers.parallel_bulk`` with ``--threads`` threads into another new index;
* ``index``: ``RagService.index_documents`` on the corpus (or its first ``--reindex-documents``) with
  the Elasticsearch backend (what ``index --backend elasticsearch`` runs: chunking and embedding
  included), unless ``--no-reindex``;

then nDCG@10 of the BM25, dense and hybrid stages of ``eval`` (`evaluate_service`, eval's own
code after its indexing step) on the embedded index and on the copy, and the difference.

    QWEN3_RAG_EMBEDDING_MODEL=$(python -m qwen3_rag.testing embedder-path) \\
    qwen3-rerank eval ../shared/data/scifact-train --split train --stages bm25,dense,hybrid --data-dir DATA
    ES_URL=http://127.0.0.1:9200 python benchmarks/copy_to_elasticsearch.py ../shared/data/scifact-train \\
        --split train --data-dir DATA
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from elasticsearch import Elasticsearch, helpers

from qwen3_rag.beir import load_beir
from qwen3_rag.evaluation import _index_safe, evaluate_service
from qwen3_rag.migrate import EXPORT_BATCH_ROWS, _provenance, copy_to_elasticsearch
from qwen3_rag.records import SourceText
from qwen3_rag.service import RagService
from qwen3_rag.settings import Settings
from qwen3_rag.stores.elasticsearch import BULK_CHUNK_SIZE, _to_source, index_settings, mapping_for
from qwen3_rag.stores.memory import MemoryStore

STAGES = ("bm25", "dense", "hybrid")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset", type=Path, help="BEIR folder")
    parser.add_argument("--split", default="test")
    parser.add_argument("--data-dir", type=Path, required=True, help="where eval built the embedded index")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="parallel_bulk threads")
    parser.add_argument("--no-reindex", action="store_true", help="skip timing index --backend elasticsearch")
    parser.add_argument(
        "--reindex-documents", type=int, default=None, help="time the re-index on the first N documents only"
    )
    parser.add_argument("--limit-queries", type=int, default=None)
    args = parser.parse_args()

    dataset = load_beir(args.dataset, args.split)
    name = f"beir-{_index_safe(dataset.name)}"
    memory = Settings.from_env(backend="memory", data_dir=args.data_dir, index_name=name)
    elastic = memory.replace(backend="elasticsearch")
    client = Elasticsearch(elastic.es_url, request_timeout=120)

    report = copy_to_elasticsearch(elastic, args.data_dir)
    _line("copy", report.chunks, report.seconds)

    seconds, written = _parallel_bulk(client, args.data_dir, name, args.threads)
    _line("parallel_bulk", written, seconds, f"{args.threads} threads")

    if not args.no_reindex:
        reindexed = elastic.replace(index_name=f"{name}-reindexed")
        documents = [SourceText(text, source=doc_id) for doc_id, text in dataset.corpus.items()]
        documents = documents[: args.reindex_documents]
        with RagService(reindexed) as service:
            # The model loads before the clock starts: the best case for re-indexing.
            service.embedder.embed_query("warm-up")
            started = time.perf_counter()
            indexed = service.index_documents(documents)
            seconds = time.perf_counter() - started
        client.indices.delete(index=reindexed.index_name, ignore_unavailable=True)
        _line(
            "index", indexed.chunks, seconds, f"{len(documents)} documents; chunking and embedding included"
        )

    results = {}
    for label, settings in (("embedded", memory), ("copy", elastic)):
        with RagService(settings) as service:
            result = evaluate_service(
                service, dataset, split=args.split, stages=STAGES, limit_queries=args.limit_queries
            )
        results[label] = {stage: result.metrics[stage]["nDCG@10"] for stage in STAGES}
    print(f"nDCG@10 on {dataset.name} ({args.split}, {result.queries} queries)")
    for stage in STAGES:
        embedded, copied = results["embedded"][stage], results["copy"][stage]
        print(f"  {stage:7s} embedded {embedded:.4f}  copy {copied:.4f}  difference {copied - embedded:+.4f}")
    client.close()


def _line(label: str, chunks: int, seconds: float, note: str = "") -> None:
    print(
        f"{label:14s} {chunks} chunks in {seconds:7.1f} s: {chunks / seconds:7.0f} chunks/s {note}".rstrip()
    )


def _parallel_bulk(client: Elasticsearch, data_dir: Path, name: str, threads: int) -> tuple[float, int]:
    """The copy's documents, written by ``helpers.parallel_bulk`` into a new index (deleted after)."""
    source = MemoryStore(data_dir, name)
    manifest = source.manifest()
    target = f"{name}-parallel-bulk"
    client.indices.delete(index=target, ignore_unavailable=True)
    started = time.perf_counter()
    mappings = mapping_for(manifest["dimension"], language=manifest["language"])
    mappings["_meta"]["qwen3_rag"].update(_provenance(manifest))
    client.indices.create(
        index=target,
        mappings=mappings,
        settings={
            **index_settings(k1=manifest["k1"], b=manifest["b"], language=manifest["language"]),
            "refresh_interval": "-1",
        },
    )
    actions = (
        {"_op_type": "create", "_index": target, "_id": chunk.id, "_source": _to_source(chunk, vector)}
        for chunks, vectors in source.export(EXPORT_BATCH_ROWS)
        for chunk, vector in zip(chunks, vectors.tolist(), strict=True)
    )
    written = sum(
        ok
        for ok, _ in helpers.parallel_bulk(client, actions, thread_count=threads, chunk_size=BULK_CHUNK_SIZE)
    )
    client.indices.put_settings(index=target, settings={"index": {"refresh_interval": None}})
    client.indices.refresh(index=target)
    seconds = time.perf_counter() - started
    assert client.count(index=target)["count"] == written
    client.indices.delete(index=target)
    source.close()
    return seconds, written


if __name__ == "__main__":
    main()
