"""``qwen3-rerank eval`` on a tiny synthetic BEIR dataset whose BM25 ordering is known, so the
reported numbers can be checked against the metric definitions (trec_eval's: linear gains)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from qwen3_rag import RagService, SourceText
from qwen3_rag.beir import BeirDataset, load_beir
from qwen3_rag.cli import register
from qwen3_rag.evaluation import EvaluationResult, evaluate_service, parse_stages
from qwen3_rag.report import markdown, write_reports
from qwen3_rag.testing import minilm_model_dir, offline_settings

CORPUS = {
    "d1": "alpha apples grow in orchards",
    "d2": "alpha beta bridges span rivers",
    "d3": "gamma clouds drift over mountains",
    "d4": "delta rivers flow slowly towards the distant sea",
    "d5": "omega robots assemble cars in factories",
}
QUERIES = {"q1": "gamma", "q2": "alpha beta", "q3": "zebra", "q4": "rivers", "q5": "unjudged question"}
QRELS = {"q1": {"d3": 1}, "q2": {"d1": 1}, "q3": {"d4": 1}, "q4": {"d4": 2, "d2": 1}}


def write_beir(directory: Path) -> Path:
    (directory / "qrels").mkdir(parents=True)
    with (directory / "corpus.jsonl").open("w", encoding="utf-8") as corpus:
        for doc_id, text in CORPUS.items():
            corpus.write(json.dumps({"_id": doc_id, "title": "", "text": text}) + "\n")
    with (directory / "queries.jsonl").open("w", encoding="utf-8") as queries:
        for query_id, text in QUERIES.items():
            queries.write(json.dumps({"_id": query_id, "text": text}) + "\n")
    rows = ["query-id\tcorpus-id\tscore"]
    rows += [f"{qid}\t{doc}\t{rel}" for qid, docs in QRELS.items() for doc, rel in docs.items()]
    (directory / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return directory


def ndcg_at(ranking: list[str], judged: dict[str, int], k: int) -> float:
    dcg = sum(judged.get(doc, 0) / math.log2(rank + 1) for rank, doc in enumerate(ranking[:k], start=1))
    ideal = sorted(judged.values(), reverse=True)[:k]
    return dcg / sum(gain / math.log2(rank + 1) for rank, gain in enumerate(ideal, start=1))


def rr_at(ranking: list[str], judged: dict[str, int], k: int) -> float:
    return next((1 / rank for rank, doc in enumerate(ranking[:k], start=1) if judged.get(doc, 0) > 0), 0.0)


def recall_at(ranking: list[str], judged: dict[str, int], k: int) -> float:
    relevant = {doc for doc, rel in judged.items() if rel > 0}
    return len(relevant & set(ranking[:k])) / len(relevant)


@pytest.fixture
def dataset(tmp_path: Path) -> BeirDataset:
    return load_beir(write_beir(tmp_path / "synthetic"))


@pytest.fixture
def service(tmp_path: Path, tiny_qwen3_dir: Path, dataset: BeirDataset) -> Iterator[RagService]:
    settings = offline_settings(
        tmp_path / "store", reranker_model=str(tiny_qwen3_dir), index_name="beir-test"
    )
    with RagService(settings) as service:
        service.index_documents([SourceText(text, doc_id) for doc_id, text in dataset.corpus.items()])
        yield service


def test_bm25_numbers_are_those_of_the_definitions(service: RagService, dataset: BeirDataset) -> None:
    result = evaluate_service(service, dataset, stages=["bm25"])
    # q1: d3 first. q2: d2 (both words) before the relevant d1. q3: nothing matches.
    # q4: d2 (shorter) before d4; gains d4=2, d2=1.
    assert result.runs["bm25"]["q1"][0] == "d3"
    assert result.runs["bm25"]["q2"][:2] == ["d2", "d1"]
    assert result.runs["bm25"]["q3"] == []
    assert result.runs["bm25"]["q4"][:2] == ["d2", "d4"]
    ndcg_q4 = (1 / math.log2(2) + 2 / math.log2(3)) / (2 / math.log2(2) + 1 / math.log2(3))
    expected = {
        "nDCG@10": (1 + 1 / math.log2(3) + 0 + ndcg_q4) / 4,
        "RR@10": (1 + 1 / 2 + 0 + 1) / 4,
        "R@10": 3 / 4,
        "R@100": 3 / 4,
    }
    assert result.queries == 4, "the unjudged q5 is left out; q3 without results counts as 0"
    assert result.metrics["bm25"] == pytest.approx(expected)


def test_every_stage_reports_the_metrics_of_its_own_rankings(
    service: RagService, dataset: BeirDataset
) -> None:
    result = evaluate_service(service, dataset)
    assert list(result.metrics) == ["bm25", "dense", "hybrid", "rerank"]
    for stage, run in result.runs.items():
        judged = {qid: dataset.qrels[qid] for qid in run}
        expected = {
            "nDCG@10": sum(ndcg_at(run[q], judged[q], 10) for q in run) / len(run),
            "RR@10": sum(rr_at(run[q], judged[q], 10) for q in run) / len(run),
            "R@10": sum(recall_at(run[q], judged[q], 10) for q in run) / len(run),
            "R@100": sum(recall_at(run[q], judged[q], 100) for q in run) / len(run),
        }
        assert result.metrics[stage] == pytest.approx(expected), stage
        assert result.seconds_per_query[stage] > 0
    for query_id, reranked in result.runs["rerank"].items():
        assert sorted(reranked) == sorted(result.runs["hybrid"][query_id]), "reranking reorders, never drops"


def test_limit_queries_takes_the_first_judged_queries(service: RagService, dataset: BeirDataset) -> None:
    result = evaluate_service(service, dataset, stages=["bm25"], limit_queries=2)
    assert result.queries == 2 and list(result.runs["bm25"]) == ["q1", "q2"]
    assert result.metrics["bm25"]["RR@10"] == pytest.approx((1 + 1 / 2) / 2)


def test_reports_hold_the_numbers_and_charts_are_pngs(tmp_path: Path) -> None:
    result = EvaluationResult(
        dataset="synthetic",
        split="test",
        queries=2,
        depth=100,
        rerank_candidates=20,
        metrics={
            "bm25": {"nDCG@10": 0.5, "RR@10": 0.25, "R@10": 0.75, "R@100": 1.0},
            "rerank": {"nDCG@10": 0.9, "RR@10": 0.8, "R@10": 0.75, "R@100": 1.0},
        },
        seconds_per_query={"bm25": 0.002, "rerank": 0.5},
    )
    paths = write_reports(result, tmp_path / "out")
    names = {path.name for path in paths}
    assert {"report.md", "report.json", "ndcg-at-10.png", "recall-at-100.png", "ms-per-query.png"} <= names
    assert all(path.read_bytes().startswith(b"\x89PNG") for path in paths if path.suffix == ".png")
    assert json.loads((tmp_path / "out" / "report.json").read_text())["metrics"]["rerank"]["nDCG@10"] == 0.9
    assert "| rerank | 0.9000 | 0.8000 | 0.7500 | 1.0000 | 500.0 |" in markdown(result)


def test_the_eval_command_writes_a_report(tmp_path: Path, tiny_qwen3_dir: Path) -> None:
    app = typer.Typer()
    register(app)
    env = {
        "QWEN3_RAG_DATA_DIR": str(tmp_path / "store"),
        "QWEN3_RAG_EMBEDDING_MODEL": str(minilm_model_dir()),
        "QWEN3_RERANK_MODEL": str(tiny_qwen3_dir),
        "QWEN3_RAG_DEVICE": "cpu",
        "COLUMNS": "200",
    }
    dataset = write_beir(tmp_path / "synthetic")
    args = ["eval", str(dataset), "--stages", "bm25,rerank", "--candidates", "3"]
    args += ["--framework", "llamaindex", "--output-dir", str(tmp_path / "report")]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "synthetic (test, 4 queries)" in result.output
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert set(report["metrics"]) == {"bm25", "rerank"}
    assert report["settings"]["index_name"] == "beir-synthetic"
    assert report["settings"]["framework"] == "llamaindex"
    assert report["rerank_candidates"] == 3


def test_unknown_stages_are_refused() -> None:
    with pytest.raises(
        ValueError, match="--stages takes a comma-separated list of bm25, dense, hybrid, rerank"
    ):
        parse_stages("bm25,splade")
    assert parse_stages("rerank, bm25") == ["bm25", "rerank"]


def test_a_missing_qrels_file_is_named(tmp_path: Path) -> None:
    directory = write_beir(tmp_path / "synthetic")
    with pytest.raises(FileNotFoundError, match=r"qrels/dev\.tsv not found"):
        load_beir(directory, split="dev")


def test_a_broken_corpus_line_is_located(tmp_path: Path) -> None:
    directory = write_beir(tmp_path / "synthetic")
    with (directory / "corpus.jsonl").open("a", encoding="utf-8") as corpus:
        corpus.write("{not json\n")
    with pytest.raises(ValueError, match=r"corpus\.jsonl:6 is not valid JSON"):
        load_beir(directory)


def test_the_shipped_sample_dataset_judges_existing_paragraphs() -> None:
    from qwen3_rag.testing import SAMPLES_DIR

    dataset = load_beir(SAMPLES_DIR.parent / "samples_beir")
    assert len(dataset.judged_queries()) == len(dataset.queries) == 28
    judged = {doc for docs in dataset.qrels.values() for doc in docs}
    assert judged <= set(dataset.corpus)
