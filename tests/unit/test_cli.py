"""`qwen3-rerank rerank`: tables for people, JSON for scripts, the same ranking as the API."""

import json

import pytest
from typer.testing import CliRunner

from qwen3_rerank import Qwen3Reranker
from qwen3_rerank.cli import app

QUERY = "capital of France"
DOCUMENTS = ["Paris is the capital of France.", "Bananas are yellow.", "Berlin is in Germany."]
runner = CliRunner()


@pytest.fixture
def expected(tiny_qwen3_dir):
    with Qwen3Reranker(str(tiny_qwen3_dir), device="cpu") as reranker:
        return reranker.rerank(QUERY, DOCUMENTS)


def invoke(model_dir, *arguments, stdin=None):
    return runner.invoke(
        app, ["rerank", QUERY, *arguments, "--model", str(model_dir), "--device", "cpu"], input=stdin
    )


def test_json_output_is_the_ranking_of_the_api(tiny_qwen3_dir, tmp_path, expected):
    documents = tmp_path / "docs.txt"
    documents.write_text("\n".join(DOCUMENTS) + "\n\n")
    result = invoke(tiny_qwen3_dir, str(documents), "--json")
    assert result.exit_code == 0, result.output
    ranked = json.loads(result.stdout)
    assert [item["index"] for item in ranked] == [r.index for r in expected]
    assert [item["score"] for item in ranked] == pytest.approx([r.score for r in expected], abs=1e-6)


@pytest.mark.parametrize(
    "stdin",
    [json.dumps(DOCUMENTS), "\n".join(json.dumps({"text": d, "id": i}) for i, d in enumerate(DOCUMENTS))],
    ids=["json-list", "json-lines"],
)
def test_documents_from_stdin_as_json(tiny_qwen3_dir, expected, stdin):
    result = invoke(tiny_qwen3_dir, "-", "--json", "--top-n", "2", stdin=stdin)
    assert result.exit_code == 0, result.output
    assert [item["index"] for item in json.loads(result.stdout)] == [r.index for r in expected][:2]


def test_json_lines_records_come_back_whole(tiny_qwen3_dir, expected):
    records = [{"id": f"doc-{i}", "text": d, "score": 0.5} for i, d in enumerate(DOCUMENTS)]
    stdin = "\n".join(json.dumps(record) for record in records)
    result = invoke(tiny_qwen3_dir, "-", "--json", stdin=stdin)
    assert result.exit_code == 0, result.output
    ranked = json.loads(result.stdout)
    assert [item["document"] for item in ranked] == [records[r.index] for r in expected]
    assert [item["score"] for item in ranked] == pytest.approx([r.score for r in expected], abs=1e-6)


def test_table_output_lists_every_document(tiny_qwen3_dir, tmp_path):
    documents = tmp_path / "docs.txt"
    documents.write_text("\n".join(DOCUMENTS))
    result = invoke(tiny_qwen3_dir, str(documents))
    assert result.exit_code == 0, result.output
    assert all(document in result.stdout for document in DOCUMENTS)


def test_version_is_printed() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("qwen3-rerank ")


def test_a_choice_is_checked_by_the_parser(tiny_qwen3_dir) -> None:
    result = invoke(tiny_qwen3_dir, "-", "--dtype", "int8", stdin="a document")
    assert result.exit_code == 2 and "'int8' is not one of" in result.output


def test_debug_shows_the_traceback(tiny_qwen3_dir, tmp_path) -> None:
    result = runner.invoke(app, ["--debug", "rerank", QUERY, str(tmp_path / "missing.txt")])
    assert isinstance(result.exception, ValueError) and "missing.txt" in str(result.exception)
