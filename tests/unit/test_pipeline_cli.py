"""``qwen3-rerank index`` and ``ask``: output, exit codes and error messages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from qwen3_rag.testing import SAMPLES_DIR, minilm_model_dir
from qwen3_rerank.cli import full_app


@pytest.fixture
def app() -> typer.Typer:
    return full_app()


@pytest.fixture
def env(tmp_path: Path, tiny_qwen3_dir: Path) -> dict[str, str]:
    """The offline models through the environment variables users set."""
    return {
        "QWEN3_RAG_DATA_DIR": str(tmp_path / "store"),
        "QWEN3_RAG_EMBEDDING_MODEL": str(minilm_model_dir()),
        "QWEN3_RERANK_MODEL": str(tiny_qwen3_dir),
        "QWEN3_RAG_DEVICE": "cpu",
        "QWEN3_RAG_BACKEND": "memory",
        "COLUMNS": "200",
    }


def test_index_then_ask_prints_the_answer_and_cited_passages(app: typer.Typer, env: dict[str, str]) -> None:
    runner = CliRunner()
    indexed = runner.invoke(app, ["index", str(SAMPLES_DIR)], env=env)
    assert indexed.exit_code == 0, indexed.output
    assert "Indexed 8 files into" in indexed.output

    asked = runner.invoke(
        app, ["ask", "Who sealed the Magna Carta?", "--top-n", "2", "--show-stages"], env=env
    )
    assert asked.exit_code == 0, asked.output
    for heading in ("Best passages", "Sources (reranked)", "Stage: bm25", "Stage: dense", "Stage: fusion"):
        assert heading in asked.output
    assert "No LLM writes an answer by default: add --llm openai" in asked.output
    assert re.search(r"load \d+\.\d+s .*rerank \d+\.\d+s", asked.output)


def test_ask_output_fits_a_terminal_without_show_stages(app: typer.Typer, env: dict[str, str]) -> None:
    runner = CliRunner()
    runner.invoke(app, ["index", str(SAMPLES_DIR)], env=env)
    asked = runner.invoke(app, ["ask", "Who sealed the Magna Carta?"], env=env | {"COLUMNS": "100"})
    assert asked.exit_code == 0, asked.output
    lines = asked.output.splitlines()
    assert len(lines) <= 20 and max(len(line) for line in lines) <= 100, asked.output


def test_ask_json_is_machine_readable(app: typer.Typer, env: dict[str, str]) -> None:
    runner = CliRunner()
    runner.invoke(app, ["index", str(SAMPLES_DIR / "history.md")], env=env)
    asked = runner.invoke(app, ["ask", "When did the Berlin Wall fall?", "--json", "--top-n", "1"], env=env)
    assert asked.exit_code == 0, asked.output
    answer = json.loads(asked.stdout)
    assert answer["question"] == "When did the Berlin Wall fall?"
    assert len(answer["passages"]) == 1 and answer["passages"][0]["source"].endswith("history.md")


def test_ask_before_index_says_to_run_index(app: typer.Typer, env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["ask", "anything"], env=env)
    assert result.exit_code == 1
    assert "run `qwen3-rerank index PATH` first" in result.output


def test_unreachable_elasticsearch_gives_the_url_and_a_hint(app: typer.Typer, env: dict[str, str]) -> None:
    args = ["index", str(SAMPLES_DIR), "--backend", "elasticsearch", "--es-url", "http://127.0.0.1:9"]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 1
    assert "cannot reach Elasticsearch at http://127.0.0.1:9" in result.output
    assert "ES_URL" in result.output


def test_indexing_only_unreadable_files_fails_and_lists_them(
    app: typer.Typer, env: dict[str, str], tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    result = CliRunner().invoke(app, ["index", str(corpus)], env=env)
    assert result.exit_code == 1
    assert "latin1.txt: not UTF-8" in result.output
    assert "nothing was indexed" in result.output


def test_a_missing_path_is_a_clear_error(app: typer.Typer, env: dict[str, str], tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["index", str(tmp_path / "missing")], env=env)
    assert result.exit_code == 1
    assert "no such file or directory" in result.output


def test_paths_and_from_together_are_refused(app: typer.Typer, env: dict[str, str], tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["index", str(SAMPLES_DIR), "--from", str(tmp_path)], env=env)
    assert result.exit_code == 1
    assert "give either PATHS to index or --from DATA_DIR to copy, not both" in result.output


def test_copying_from_a_missing_data_directory_names_it(
    app: typer.Typer, env: dict[str, str], tmp_path: Path
) -> None:
    result = CliRunner().invoke(app, ["index", "--from", str(tmp_path / "nowhere")], env=env)
    assert result.exit_code == 1
    assert "--from: no data directory" in result.output and "nowhere" in result.output


def test_check_of_a_store_never_written_says_it_is_empty(app: typer.Typer, env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["check"], env=env)
    assert result.exit_code == 0, result.output
    assert "empty, nothing indexed yet." in result.output


def test_an_invalid_backend_is_named(app: typer.Typer, env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["ask", "q", "--backend", "sqlite"], env=env)
    assert result.exit_code == 2
    assert "'sqlite' is not one of 'memory', 'elasticsearch'" in result.output


@pytest.mark.parametrize(
    ("chosen", "expected"), [({}, "llamaindex"), ({"QWEN3_RAG_FRAMEWORK": "haystack"}, "haystack")]
)
def test_without_the_default_framework_the_installed_one_is_used_unless_one_was_chosen(
    monkeypatch: pytest.MonkeyPatch, chosen: dict[str, str], expected: str
) -> None:
    from qwen3_rag import cli
    from qwen3_rag.settings import Settings

    # A LlamaIndex-only environment: the default framework's package is not importable.
    monkeypatch.setitem(cli.FRAMEWORK_PACKAGES, "haystack", "haystack_is_not_installed_here")
    assert cli._with_installed_framework(Settings.from_env(chosen)).framework == expected
    monkeypatch.setitem(cli.FRAMEWORK_PACKAGES, "llamaindex", "nor_llama_index_here")
    assert cli._with_installed_framework(Settings.from_env({})).framework == "haystack"  # fails naming it
