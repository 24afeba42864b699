"""The commands against Elasticsearch: ``index`` once, ``ask`` from either framework, ``eval``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from qwen3_rag.testing import SAMPLES_DIR
from qwen3_rerank.cli import full_app

pytestmark = pytest.mark.integration


@pytest.fixture
def app() -> typer.Typer:
    """The real ``qwen3-rerank`` app, with its one-line error reporting."""
    return full_app()


def test_index_once_then_ask_with_either_framework(app: typer.Typer, cli_env: dict[str, str]) -> None:
    runner = CliRunner()
    indexed = runner.invoke(app, ["index", str(SAMPLES_DIR)], env=cli_env)
    assert indexed.exit_code == 0, indexed.output
    answers = {}
    for framework in ("haystack", "llamaindex"):
        args = ["ask", "Who first climbed Mount Everest?", "--framework", framework, "--top-n", "2", "--json"]
        asked = runner.invoke(app, args, env=cli_env)
        assert asked.exit_code == 0, asked.output
        answers[framework] = json.loads(asked.stdout)["passages"]
    assert len(answers["haystack"]) == 2
    assert answers["haystack"] == answers["llamaindex"]


def test_ask_on_a_missing_index_says_to_run_index(app: typer.Typer, cli_env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["ask", "anything"], env=cli_env)
    assert result.exit_code == 1
    assert "run `qwen3-rerank index PATH` first" in result.output


def test_eval_runs_on_elasticsearch(app: typer.Typer, cli_env: dict[str, str], tmp_path: Path) -> None:
    dataset = tmp_path / "tiny"
    (dataset / "qrels").mkdir(parents=True)
    (dataset / "corpus.jsonl").write_text(
        '{"_id": "d1", "text": "Olympus Mons is a volcano on Mars."}\n'
        '{"_id": "d2", "text": "Bread rises because of yeast."}\n',
        encoding="utf-8",
    )
    (dataset / "queries.jsonl").write_text('{"_id": "q1", "text": "volcano on Mars"}\n', encoding="utf-8")
    (dataset / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n", encoding="utf-8")
    args = ["eval", str(dataset), "--stages", "bm25,hybrid", "--output-dir", str(tmp_path / "report")]
    result = CliRunner().invoke(app, args, env=cli_env)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["metrics"]["bm25"]["RR@10"] == 1.0
    assert report["settings"]["backend"] == "elasticsearch"
