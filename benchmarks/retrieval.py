"""First-stage retrieval on a BEIR dataset: our stores against reference libraries, in one run.

Prints nDCG@10, Recall@100 and ms/query of BM25, dense and hybrid retrieval from the embedded
store (and from Elasticsearch when ES_URL is set, on the first ``--es-queries`` judged queries,
with the difference to the embedded store on the same queries), next to the same metrics of:

* ``bm25s`` (Lucene scorer, the same k1 and b) on whole documents (title + text), as in the bm25s
  and BEIR baselines: with English Snowball stemming and stop words, and for a Chinese, Japanese
  or Korean set also with character bigrams and with jieba's dictionary words (written here, not
  taken from the store's analyzer, so that they check it);
* exact dense search with the same embedder on whole documents;
* reciprocal rank fusion (k 60) of the first two.

Several sets are run one after the other and printed in one table (``PATH:SPLIT``).

Metrics come from ir-measures; every metric is the mean over all judged queries. Embeddings are
cached under $QWEN3_BENCH_CACHE (default /tmp/qwen3-retrieval-cache), so re-runs skip the model.

    python benchmarks/retrieval.py /path/to/scifact-train --split train
    python benchmarks/retrieval.py ../shared/data/scifact-train:train ../shared/data/cmrc2018:dev
    python benchmarks/retrieval.py DATA --chunk-sizes 160,256,512,0   # 0 = whole documents
    python benchmarks/retrieval.py DATA --scale 1000000              # synthetic scale run only
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from retrieval_cache import cached_embeddings, chunk_corpus

from qwen3_rag.beir import BeirDataset, load_beir
from qwen3_rag.evaluation import mean_metrics
from qwen3_rag.fusion import convex_fusion, reciprocal_rank_fusion
from qwen3_rag.records import Chunk, Passage
from qwen3_rag.settings import DEFAULT_BM25_B, DEFAULT_BM25_K1, DEFAULT_LANGUAGE
from qwen3_rag.stores.memory import MemoryStore
from qwen3_rag.testing import minilm_model_dir

DEPTH = 100
Run = dict[str, list[str]]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("datasets", nargs="+", help="BEIR folders, each PATH or PATH:SPLIT")
    parser.add_argument("--split", default="test", help="the split of a PATH without one")
    parser.add_argument("--chunk-sizes", default="160", help="comma-separated; 0 = whole documents")
    parser.add_argument("--chunk-overlap", type=int, default=32)
    parser.add_argument("--language", default=DEFAULT_LANGUAGE)
    parser.add_argument("--k1", type=float, default=DEFAULT_BM25_K1)
    parser.add_argument("--b", type=float, default=DEFAULT_BM25_B)
    parser.add_argument("--limit-queries", type=int)
    parser.add_argument("--es-queries", type=int, default=500, help="judged queries asked of Elasticsearch")
    parser.add_argument("--model", default=str(minilm_model_dir()))
    parser.add_argument("--rules", action="store_true", help="also compare passage-to-document rules")
    parser.add_argument("--fusions", action="store_true", help="also compare convex fusion weights")
    parser.add_argument("--hnsw", action="store_true", help="also search through the HNSW index")
    parser.add_argument("--scale", type=int, help="only a synthetic run with this many passages")
    args = parser.parse_args()
    if args.scale:
        scale_run(args.scale, hnsw=args.hnsw)
        return
    table: list[tuple[str, dict[str, float], float]] = []
    for spec in args.datasets:
        path, _, split = spec.partition(":")
        table += dataset_rows(Path(path), split or args.split, args)
    print_table(table)


def dataset_rows(path: Path, split: str, args) -> list[tuple[str, dict[str, float], float]]:
    """The table rows of one set, each named after it."""
    dataset = load_beir(path, split)
    query_ids = dataset.judged_queries(args.limit_queries)
    queries = [dataset.queries[qid] for qid in query_ids]
    qrels = {qid: dataset.qrels[qid] for qid in query_ids}
    query_vectors = cached_embeddings(args.model, list(dataset.queries.values()), "query")
    position = {qid: i for i, qid in enumerate(dataset.queries)}
    query_vectors = query_vectors[[position[qid] for qid in query_ids]]
    print(f"{dataset.name} ({split}): {len(dataset.corpus)} documents, {len(query_ids)} judged queries\n")
    rows: list[tuple[str, dict[str, float], float]] = []
    reference = reference_runs(dataset, query_ids, queries, query_vectors, args)
    for name, (run, ms) in reference.items():
        rows.append((f"{dataset.name} reference {name}", mean_metrics(qrels, run, query_ids), ms))
    for size in [int(size) for size in args.chunk_sizes.split(",")]:
        runs = store_runs(dataset, query_ids, queries, query_vectors, size or None, args)
        for name, (run, ms) in runs.items():
            judged = [qid for qid in query_ids if qid in run]
            rows.append((f"{dataset.name} {name}", mean_metrics(qrels, run, judged), ms))
        rows += _backend_differences(dataset.name, runs, qrels)
    return rows


def _backend_differences(set_name: str, runs: dict[str, tuple[Run, float]], qrels) -> list:
    """Elasticsearch minus the embedded store, nDCG@10 on the queries both answered."""
    rows = []
    for name, (run, _ms) in runs.items():
        if not name.startswith("elasticsearch "):
            continue
        memory = runs["memory " + name.removeprefix("elasticsearch ")][0]
        judged = list(run)
        ours = mean_metrics(qrels, {qid: memory[qid] for qid in judged}, judged)
        theirs = mean_metrics(qrels, run, judged)
        difference = {metric: theirs[metric] - ours[metric] for metric in theirs}
        rows.append((f"{set_name} {name} minus memory ({len(judged)} queries)", difference, 0.0))
    return rows


# Han, Hiragana, Katakana and Hangul: the scripts the references bigram.
_CJK_RANGES = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_CJK = re.compile(f"[{_CJK_RANGES}]+")
# Other words: word characters that are not CJK (``\w+`` alone would run a Latin word on into
# the Chinese after it: "force开发的…").
_OTHER_WORD = re.compile(f"[^\\W{_CJK_RANGES}]+")


def _is_cjk(texts: Sequence[str]) -> bool:
    sample = "".join(texts[:200])
    return sum(len(run) for run in _CJK.findall(sample)) > 0.2 * max(1, len(sample))


def _bigram_tokens(text: str) -> list[str]:
    """Character bigrams of each CJK run (a lone character alone), other words lower-cased."""
    tokens = []
    for run, word in re.findall(f"({_CJK.pattern})|({_OTHER_WORD.pattern})", text.lower()):
        if run:
            tokens += [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]
        else:
            tokens.append(word)
    return tokens


def _jieba_tokens(text: str) -> list[str]:
    import jieba

    return [word for word in jieba.lcut(text.lower()) if re.search(r"\w", word)]


def _bm25s_run(doc_ids, documents, query_ids, queries, tokenize, args) -> tuple[Run, float]:
    import bm25s

    retriever = bm25s.BM25(k1=args.k1, b=args.b, method="lucene")
    retriever.index(tokenize(documents), show_progress=False)
    run: Run = {}
    started = time.perf_counter()
    for qid, query in zip(query_ids, queries, strict=True):
        rows, scores = retriever.retrieve(tokenize([query]), k=DEPTH, show_progress=False, n_threads=1)
        run[qid] = [doc_ids[row] for row, score in zip(rows[0], scores[0], strict=True) if score > 0]
    return run, (time.perf_counter() - started) * 1000 / len(query_ids)


def reference_runs(
    dataset: BeirDataset, query_ids: list[str], queries: list[str], query_vectors: np.ndarray, args
) -> dict[str, tuple[Run, float]]:
    """bm25s and exact dense search on whole documents, and their RRF."""
    import bm25s
    import Stemmer

    doc_ids = list(dataset.corpus)
    documents = list(dataset.corpus.values())
    stemmer = Stemmer.Stemmer("english")

    def english(texts: Sequence[str]) -> Any:
        return bm25s.tokenize(list(texts), stopwords="en", stemmer=stemmer, show_progress=False)

    started = time.perf_counter()
    bm25, bm25_ms = _bm25s_run(doc_ids, documents, query_ids, queries, english, args)
    print(f"reference bm25s: {time.perf_counter() - started:.1f} s")
    runs: dict[str, tuple[Run, float]] = {"bm25s": (bm25, bm25_ms)}
    if _is_cjk(documents):
        for name, tokenize in (("bigrams", _bigram_tokens), ("jieba words", _jieba_tokens)):
            started = time.perf_counter()
            runs[f"bm25s {name}"] = _bm25s_run(doc_ids, documents, query_ids, queries, _lists(tokenize), args)
            print(f"reference bm25s {name}: {time.perf_counter() - started:.1f} s")
        bm25, bm25_ms = runs["bm25s bigrams"]
    vectors = cached_embeddings(args.model, documents, "document")
    dense: Run = {}
    started = time.perf_counter()
    for qid, vector in zip(query_ids, query_vectors, strict=True):
        scores = vectors @ vector
        top = np.argsort(-scores)[:DEPTH]
        dense[qid] = [doc_ids[row] for row in top]
    dense_ms = (time.perf_counter() - started) * 1000 / len(query_ids)
    hybrid = {qid: _rrf_ids([bm25[qid], dense[qid]]) for qid in query_ids}
    return {**runs, "dense": (dense, dense_ms), "rrf": (hybrid, bm25_ms + dense_ms)}


def _lists(tokenize: Callable[[str], list[str]]) -> Callable[[Sequence[str]], list[list[str]]]:
    """bm25s indexes and queries lists of string tokens as well as its own ``Tokenized``."""
    return lambda texts: [tokenize(text) for text in texts]


def store_runs(
    dataset: BeirDataset,
    query_ids: list[str],
    queries: list[str],
    query_vectors: np.ndarray,
    size: int | None,
    args,
) -> dict[str, tuple[Run, float]]:
    """BM25, dense and hybrid from the embedded store (and Elasticsearch when ES_URL is set) over
    chunks of ``size`` tokens."""
    common = (dataset, query_ids, queries, query_vectors, size, args)
    runs = _runs_of(_memory_store, "memory", *common)
    if args.hnsw:
        hnsw = _runs_of(functools.partial(_memory_store, ann_threshold=1), "memory-hnsw", *common)
        runs.update({name: run for name, run in hnsw.items() if " dense" in name})
        _print_overlap(runs, "memory", "memory-hnsw", query_ids)
    if os.environ.get("ES_URL"):
        n = args.es_queries
        subset = (dataset, query_ids[:n], queries[:n], query_vectors[:n], size, args)
        runs.update(_runs_of(_es_store, "elasticsearch", *subset))
    return runs


def _print_overlap(runs: dict[str, tuple[Run, float]], exact: str, approximate: str, query_ids) -> None:
    """How many of the exact dense search's top-100 documents the approximate one also found."""
    for name, (run, _ms) in list(runs.items()):
        if name.startswith(f"{approximate} ") and name.endswith(" dense"):
            reference = runs[exact + name[len(approximate) :]][0]
            found = [len(set(run[q]) & set(reference[q])) / max(1, len(reference[q])) for q in query_ids]
            overlap = np.mean(found)
            print(f"{name}: recall@{DEPTH} against exact search {overlap:.4f}")


@contextlib.contextmanager
def _memory_store(args, ann_threshold: int = 0):
    with tempfile.TemporaryDirectory() as data_dir:
        store = MemoryStore(
            Path(data_dir),
            "bench",
            language=args.language,
            bm25_k1=args.k1,
            bm25_b=args.b,
            ann_threshold=ann_threshold,
        )
        yield store, store.bulk
        store.close()


@contextlib.contextmanager
def _es_store(args):
    from elasticsearch import Elasticsearch

    from qwen3_rag.stores.elasticsearch import ElasticsearchStore

    url = os.environ["ES_URL"]
    client = Elasticsearch(url, request_timeout=120)
    index = "bench-retrieval"
    client.indices.delete(index=index, ignore_unavailable=True)
    store = ElasticsearchStore(client, index, url=url, language=args.language, bm25_k1=args.k1, bm25_b=args.b)
    yield store, contextlib.nullcontext
    client.indices.delete(index=index, ignore_unavailable=True)
    store.close()


def _runs_of(open_store, backend, dataset, query_ids, queries, query_vectors, size, args):
    chunks = chunk_corpus(dataset.corpus, size, args.chunk_overlap)
    vectors = cached_embeddings(args.model, [chunk.text for chunk in chunks], "document")
    per_doc = len(chunks) / len(dataset.corpus)
    with open_store(args) as (store, bulk):
        started = time.perf_counter()
        with bulk():
            for start in range(0, len(chunks), 2000):
                store.write(chunks[start : start + 2000], vectors[start : start + 2000])
        build = time.perf_counter() - started
        tokens = _token_counts(chunks)
        print(
            f"{backend} store, {len(chunks)} chunks ({per_doc:.2f}/doc, size {size or 'whole'}, "
            f"{np.mean(list(tokens.values())):.0f} tokens each): built in {build:.1f} s"
        )
        # Enough passages that DEPTH distinct documents are (nearly always) among them.
        fetch = DEPTH * max(1, int(np.ceil(per_doc * 2))) if size else DEPTH
        bm25, bm25_ms = _timed(lambda q, v: store.bm25(q, fetch), queries, query_vectors)
        dense, dense_ms = _timed(lambda q, v: store.knn(v, fetch), queries, query_vectors)
    label = f"{backend} " + (f"chunks {size}" if size else "whole docs")
    fused_passages = [reciprocal_rank_fusion([b, d], top_k=fetch) for b, d in zip(bm25, dense, strict=True)]
    _print_rerank_cost(label, query_ids, fused_passages, dataset.qrels, tokens)
    runs: dict[str, tuple[Run, float]] = {
        f"{label} bm25": (_by_document(query_ids, bm25), bm25_ms),
        f"{label} dense": (_by_document(query_ids, dense), dense_ms),
        f"{label} hybrid rrf (documents)": (_fuse_documents(query_ids, bm25, dense), bm25_ms + dense_ms),
    }
    if args.rules:
        runs[f"{label} hybrid rrf (passages, then max)"] = (
            _by_document(query_ids, fused_passages),
            bm25_ms + dense_ms,
        )
        for rule_name, rule in (("sum", _sum_rule), ("first-passage", _first_passage_rule)):
            runs[f"{label} bm25 rule={rule_name}"] = (_by_document(query_ids, bm25, rule), bm25_ms)
            runs[f"{label} dense rule={rule_name}"] = (_by_document(query_ids, dense, rule), dense_ms)
    if args.fusions:
        for weight in (0.3, 0.4, 0.5, 0.6, 0.7):
            fused = [
                convex_fusion(_max_passages(b), _max_passages(d), dense_weight=weight, top_k=DEPTH)
                for b, d in zip(bm25, dense, strict=True)
            ]
            runs[f"{label} hybrid convex w={weight}"] = (_by_document(query_ids, fused), bm25_ms + dense_ms)
    return runs


@functools.cache
def _qwen3_tokenizer() -> Any:
    from qwen3_rerank.testing import build_qwen3_tokenizer

    return build_qwen3_tokenizer()


def _token_counts(chunks: Sequence[Chunk]) -> dict[str, int]:
    """Each passage's length in the reranker's tokens: what reranking it costs."""
    lengths = [len(ids) for ids in _qwen3_tokenizer()([chunk.text for chunk in chunks])["input_ids"]]
    return {chunk.id: length for chunk, length in zip(chunks, lengths, strict=True)}


def _print_rerank_cost(label, query_ids, fused, qrels, tokens: dict[str, int]) -> None:
    """What the reranker can reach: the share of relevant documents among the first C fused
    passages (the ``candidates`` setting), and among the passages that fit a token budget."""

    def recall(passages: Sequence[Passage], qid: str) -> float:
        relevant = {doc for doc, grade in qrels[qid].items() if grade > 0}
        return len(relevant & {p.source for p in passages}) / max(1, len(relevant))

    def within(passages: Sequence[Passage], budget: int) -> list[Passage]:
        spent = np.cumsum([tokens[p.id] for p in passages])
        return list(passages[: int(np.searchsorted(spent, budget, side="right"))])

    parts = []
    for candidates in (12, 25, 50):
        cost = np.mean([sum(tokens[p.id] for p in passages[:candidates]) for passages in fused])
        hit = np.mean(
            [recall(passages[:candidates], qid) for qid, passages in zip(query_ids, fused, strict=True)]
        )
        parts.append(f"{candidates} candidates: recall {hit:.4f} at {cost:,.0f} tokens")
    for budget in (2000, 4000, 8000):
        hit = np.mean(
            [recall(within(passages, budget), qid) for qid, passages in zip(query_ids, fused, strict=True)]
        )
        parts.append(f"{budget:,}-token budget: recall {hit:.4f}")
    print(f"{label}, hybrid RRF passages for the reranker: " + "; ".join(parts))


def _timed(search: Callable[[str, np.ndarray], list[Passage]], queries: list[str], vectors: np.ndarray):
    results = []
    started = time.perf_counter()
    for query, vector in zip(queries, vectors, strict=True):
        results.append(search(query, vector))
    return results, (time.perf_counter() - started) * 1000 / len(queries)


def _max_passages(passages: Sequence[Passage]) -> list[Passage]:
    """One passage per document: its best one (lists are best first)."""
    seen: dict[str, Passage] = {}
    for passage in passages:
        seen.setdefault(passage.source, passage)
    return [
        p.__class__(p.source, p.text, p.source, p.score, rank, p.meta)
        for rank, p in enumerate(seen.values(), 1)
    ]


def _by_document(query_ids, rankings, rule=None) -> Run:
    rule = rule or (lambda passages: list(dict.fromkeys(p.source for p in passages)))
    return {qid: rule(passages)[:DEPTH] for qid, passages in zip(query_ids, rankings, strict=True)}


def _sum_rule(passages: Sequence[Passage]) -> list[str]:
    totals: dict[str, float] = {}
    for passage in passages:
        totals[passage.source] = totals.get(passage.source, 0.0) + passage.score
    return sorted(totals, key=lambda doc: -totals[doc])


def _first_passage_rule(passages: Sequence[Passage]) -> list[str]:
    """Only each document's first passage counts (FirstP)."""
    return list(dict.fromkeys(p.source for p in passages if p.meta.get("position") == 0))


def _fuse_documents(query_ids, bm25, dense) -> Run:
    return {
        qid: [p.id for p in reciprocal_rank_fusion([_max_passages(b), _max_passages(d)], top_k=DEPTH)]
        for qid, b, d in zip(query_ids, bm25, dense, strict=True)
    }


def _rrf_ids(rankings: Sequence[Sequence[str]], k: int = 60) -> list[str]:
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, doc in enumerate(ranking, start=1):
            scores[doc] = scores.get(doc, 0.0) + 1.0 / (k + rank)
    return sorted(scores, key=lambda doc: -scores[doc])[:DEPTH]


def scale_run(passages: int, dimension: int = 384, queries: int = 200, *, hnsw: bool = False) -> None:
    """Index ``passages`` synthetic passages (Zipf-distributed words, random unit vectors) in the
    embedded store and time building, opening and searching it (exact dense search, and with
    ``hnsw`` also through an HNSW index); nothing is kept afterwards."""
    from qwen3_rag.records import Chunk

    rng = np.random.default_rng(0)
    vocabulary = np.asarray([f"w{i}" for i in range(50_000)])
    lengths = rng.integers(20, 120, size=passages)
    words = vocabulary[np.minimum(rng.zipf(1.3, size=int(lengths.sum())) - 1, len(vocabulary) - 1)]
    cuts = np.cumsum(lengths)[:-1]
    texts = [" ".join(chunk) for chunk in np.split(words, cuts)]
    chunks = [Chunk(f"p{i}", text, f"doc{i // 3}", i % 3) for i, text in enumerate(texts)]
    vectors = rng.standard_normal((passages, dimension), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    query_texts = [" ".join(rng.choice(texts[i].split(), 5)) for i in rng.integers(0, passages, queries)]
    query_vectors = vectors[rng.integers(0, passages, queries)] + 0.1 * rng.standard_normal(
        (queries, dimension), dtype=np.float32
    )
    del words
    for ann_threshold in (0, 1) if hnsw else (0,):
        label = "exact" if ann_threshold == 0 else "hnsw"
        with tempfile.TemporaryDirectory() as data_dir:
            store = MemoryStore(Path(data_dir), "scale", ann_threshold=ann_threshold)
            started = time.perf_counter()
            store.write(chunks, vectors)
            build = time.perf_counter() - started
            size = sum(path.stat().st_size for path in Path(data_dir).rglob("*") if path.is_file())
            store.close()
            started = time.perf_counter()
            store = MemoryStore(Path(data_dir), "scale", ann_threshold=ann_threshold)
            store.bm25("w1", 1), store.knn(query_vectors[0], 1)
            opened = time.perf_counter() - started
            _, bm25_ms = _timed(lambda q, v, s=store: s.bm25(q, 100), query_texts, query_vectors)
            dense, dense_ms = _timed(lambda q, v, s=store: s.knn(v, 100), query_texts, query_vectors)
            if ann_threshold:
                recall = np.mean(
                    [
                        len({p.id for p in approx} & {f"p{row}" for row in np.argsort(-(vectors @ v))[:100]})
                        / 100
                        for approx, v in zip(dense, query_vectors, strict=True)
                    ]
                )
                recall_text = f", HNSW recall@100 vs exact {recall:.3f}"
            else:
                recall_text = ""
            print(
                f"{passages:,} passages, dense {label}: build {build:.0f} s (BM25 + vectors"
                f"{' + HNSW' if ann_threshold else ''}), {size / 2**20:.0f} MiB on disk, first search "
                f"after opening {opened * 1000:.0f} ms; BM25 {bm25_ms:.1f} ms/query, dense {dense_ms:.1f} "
                f"ms/query{recall_text}",
                flush=True,
            )


def print_table(rows: Sequence[tuple[str, dict[str, float], float]]) -> None:
    width = max(len(name) for name, _, _ in rows)
    print(f"\n| {'run'.ljust(width)} | nDCG@10 | Recall@10 | Recall@100 | ms / query |")
    print(f"|{'-' * (width + 2)}|--------:|----------:|-----------:|-----------:|")
    for name, metrics, ms in rows:
        print(
            f"| {name.ljust(width)} | {metrics['nDCG@10']:.4f} | {metrics['R@10']:9.4f} | "
            f"{metrics['R@100']:10.4f} | {ms:10.2f} |"
        )


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
