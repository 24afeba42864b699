"""Retrieval quality of each stage on a BEIR dataset: nDCG@10, MRR@10, Recall@10 and @100.

The corpus is indexed by `RagService.index_documents` and every stage runs through the
service's own retrieval layer and framework reranker, so the numbers describe the pipeline
users run. Metrics come from ``ir-measures`` (the TREC ``trec_eval`` definitions).

Passages are chunks; a document's rank is the rank of its best chunk (MaxP, the rule that measured
best on SciFact, see docs/evaluation.md), and each retriever fetches `PASSAGES_PER_DOCUMENT` times
the depth in passages so that ``depth`` distinct documents remain after collapsing. The run handed to
``ir-measures`` scores documents by reciprocal rank, so the evaluator sees exactly the stage's
order (equal stage scores cannot be reshuffled by its tie-breaking). A judged query for which a
stage returns nothing scores 0 on every metric rather than being left out of the mean.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from qwen3_rerank.extras import missing

try:
    import ir_measures
except ImportError as error:  # pragma: no cover - depends on the installed extras
    raise missing(error, "qwen3-rerank eval") from error

from .beir import BeirDataset, load_beir
from .embedding import TextSample, language_warning
from .records import Passage, SourceText
from .service import RagService
from .settings import DEFAULT_INDEX, Settings
from .stores.analysis import ANALYSIS_VERSION

logger = logging.getLogger(__name__)

STAGES = ("bm25", "dense", "hybrid", "rerank")
METRICS = ("nDCG@10", "RR@10", "R@10", "R@100")
METRIC_LABELS = {"nDCG@10": "nDCG@10", "RR@10": "MRR@10", "R@10": "Recall@10", "R@100": "Recall@100"}
DEFAULT_DEPTH = 100
# Passages fetched per document wanted: a document split in chunks may fill several ranks.
PASSAGES_PER_DOCUMENT = 3


@dataclass
class EvaluationResult:
    """Mean metrics and mean seconds per query of each stage, plus each query's ranking.

    ``seconds_per_query["rerank"]`` is the reranking alone; a reranked answer costs the
    ``hybrid`` time plus that.
    """

    dataset: str
    split: str
    queries: int
    depth: int
    rerank_candidates: int
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds_per_query: dict[str, float] = field(default_factory=dict)
    runs: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    # Why a stage may score low, in one line each (the embedder does not read the corpus's languages).
    warnings: list[str] = field(default_factory=list)


def parse_stages(text: str) -> list[str]:
    """``"bm25,rerank"`` -> ``["bm25", "rerank"]``, in pipeline order; unknown names are refused."""
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(STAGES))
    if unknown or not chosen:
        raise ValueError(f"--stages takes a comma-separated list of {', '.join(STAGES)}; got {text!r}")
    return [stage for stage in STAGES if stage in chosen]


def run_evaluation(
    dataset_dir: Path,
    settings: Settings,
    *,
    split: str = "test",
    stages: Sequence[str] = STAGES,
    limit_queries: int | None = None,
    depth: int | None = None,
    show_progress: bool = False,
) -> EvaluationResult:
    """Index ``dataset_dir``'s corpus into its own index and evaluate ``stages`` on its queries.

    The index is named after the dataset (``beir-<name>``) unless ``settings.index_name`` was
    changed from the default, so evaluation never mixes with the user's documents. An index that
    Haystack or LlamaIndex wrote (read-only here) is evaluated as it is, without indexing: its
    source field must hold the corpus's document ids.
    """
    dataset = load_beir(dataset_dir, split)
    if settings.index_name == DEFAULT_INDEX:
        settings = settings.replace(index_name=f"beir-{_index_safe(dataset.name)}")
    with RagService(settings) as service:
        service.ping()
        indexed = False
        if service.writable:  # an index someone else wrote is evaluated as it is
            indexed = _index_unless_cached(service, dataset, show_progress=show_progress)
        warnings = _embedder_warnings(dataset, settings, logged=indexed)
        result = evaluate_service(
            service,
            dataset,
            split=split,
            stages=stages,
            limit_queries=limit_queries,
            depth=depth,
            show_progress=show_progress,
        )
        result.warnings = warnings
        return result


def _embedder_warnings(dataset: BeirDataset, settings: Settings, *, logged: bool) -> list[str]:
    """The embedder language warning for this corpus, logged unless indexing just logged it."""
    sample = TextSample()
    sample.add(dataset.corpus.values())
    warning = language_warning(settings.embedding_model, sample.texts)
    if warning and not logged:
        logger.warning(warning)
    return [warning] if warning else []


def evaluate_service(
    service: RagService,
    dataset: BeirDataset,
    *,
    split: str = "test",
    stages: Sequence[str] = STAGES,
    limit_queries: int | None = None,
    depth: int | None = None,
    show_progress: bool = False,
) -> EvaluationResult:
    """Evaluate ``stages`` on an already indexed dataset, ranking ``depth`` documents per query."""
    depth = depth or DEFAULT_DEPTH
    candidates = min(service.settings.candidates, depth)
    query_ids = dataset.judged_queries(limit_queries)
    if not query_ids:
        raise ValueError(f"{dataset.name} has no judged queries in split {split!r}")
    runs: dict[str, dict[str, list[str]]] = {stage: {} for stage in stages}
    seconds: dict[str, float] = dict.fromkeys(stages, 0.0)
    for query_id in tqdm(query_ids, desc="queries", disable=not show_progress):
        rankings, timings = _run_stages(service, dataset.queries[query_id], stages, depth, candidates)
        for stage in stages:
            runs[stage][query_id] = _documents(rankings[stage])[:depth]
            seconds[stage] += timings[stage]
    qrels = {qid: dataset.qrels[qid] for qid in query_ids}
    metrics = {stage: mean_metrics(qrels, runs[stage], query_ids) for stage in stages}
    return EvaluationResult(
        dataset=dataset.name,
        split=split,
        queries=len(query_ids),
        depth=depth,
        rerank_candidates=candidates,
        metrics=metrics,
        seconds_per_query={stage: total / len(query_ids) for stage, total in seconds.items()},
        runs=runs,
        settings=service.settings.to_public_dict(),
    )


def index_fingerprint(dataset: BeirDataset, settings: Settings) -> str:
    """What the built index depends on: the corpus, the chunking, the embedding model, and for
    Elasticsearch (which analyses at indexing time) the analysis and BM25 parameters (the
    embedded store rebuilds its BM25 index itself when those differ)."""
    digest = hashlib.sha256()
    for doc_id, text in dataset.corpus.items():
        digest.update(f"{doc_id}\x00{text}\x00".encode())
    parts = [settings.backend, settings.chunk_size, settings.chunk_overlap, settings.embedding_model]
    if settings.backend == "elasticsearch":
        parts += [settings.language, ANALYSIS_VERSION, settings.bm25_k1, settings.bm25_b]
    digest.update(json.dumps(parts).encode())
    return digest.hexdigest()


def _index_unless_cached(service: RagService, dataset: BeirDataset, *, show_progress: bool) -> bool:
    """Index the corpus (True), unless this index already holds it as the same settings would build it.

    The fingerprint of the last build is kept beside the embedded store (``<index>.eval.json``)
    with the passage count; a different fingerprint or count (the index was changed or
    deleted) rebuilds it.
    """
    settings = service.settings
    marker = settings.data_dir / f"{settings.index_name}.eval.json"
    fingerprint = index_fingerprint(dataset, settings)
    try:
        cached = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cached = {}
    if cached.get("fingerprint") == fingerprint and cached.get("passages") == service.document_count() > 0:
        logger.info("reusing the index %s (corpus, chunking and model unchanged)", service.location)
        return False
    documents = [SourceText(text, source=doc_id) for doc_id, text in dataset.corpus.items()]
    service.index_documents(documents, show_progress=show_progress)
    marker.parent.mkdir(parents=True, exist_ok=True)
    record = {"fingerprint": fingerprint, "passages": service.document_count(), "location": service.location}
    marker.write_text(json.dumps(record), encoding="utf-8")
    return True


def _run_stages(
    service: RagService, query: str, stages: Sequence[str], depth: int, candidates: int
) -> tuple[dict[str, list[Passage]], dict[str, float]]:
    rankings: dict[str, list[Passage]] = {}
    timings: dict[str, float] = {}
    for stage, search in (("bm25", service.retriever.bm25), ("dense", service.retriever.dense)):
        if stage in stages:
            started = time.perf_counter()
            rankings[stage] = search(query, depth * PASSAGES_PER_DOCUMENT)
            timings[stage] = time.perf_counter() - started
    if "hybrid" in stages or "rerank" in stages:
        started = time.perf_counter()
        rankings["hybrid"] = service.retrieve(query, candidates=depth * PASSAGES_PER_DOCUMENT).fused
        timings["hybrid"] = time.perf_counter() - started
    if "rerank" in stages:
        head, tail = rankings["hybrid"][:candidates], rankings["hybrid"][candidates:]
        started = time.perf_counter()
        reranked = service.framework.rerank(query, head, len(head)) if head else []
        timings["rerank"] = time.perf_counter() - started
        rankings["rerank"] = reranked + tail
    return rankings, timings


def _documents(passages: Sequence[Passage]) -> list[str]:
    """Document ids in order of their best chunk."""
    return list(dict.fromkeys(passage.source for passage in passages))


def mean_metrics(
    qrels: dict[str, dict[str, int]], run: dict[str, list[str]], query_ids: Sequence[str]
) -> dict[str, float]:
    """Each metric's mean over all ``query_ids``; a query without results counts as 0."""
    measures = [ir_measures.parse_measure(name) for name in METRICS]
    scored_run = {
        qid: {doc: 1.0 / rank for rank, doc in enumerate(docs, start=1)} for qid, docs in run.items() if docs
    }
    totals = dict.fromkeys(METRICS, 0.0)
    for metric in ir_measures.iter_calc(measures, qrels, scored_run):
        totals[str(metric.measure)] += metric.value
    return {name: total / len(query_ids) for name, total in totals.items()}


def _index_safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name.lower()) or "dataset"
