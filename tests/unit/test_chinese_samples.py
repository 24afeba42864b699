"""A Chinese user's first run: the bundled Chinese samples indexed, then asked in Chinese."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from qwen3_rag.testing import SAMPLES_DIR, minilm_model_dir
from qwen3_rerank.cli import full_app

SAMPLES_ZH = SAMPLES_DIR.parent / "samples_zh"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, tiny_qwen3_dir: Path) -> dict[str, str]:
    return {
        "QWEN3_RAG_DATA_DIR": str(tmp_path_factory.mktemp("zh") / "store"),
        "QWEN3_RAG_EMBEDDING_MODEL": str(minilm_model_dir()),
        "QWEN3_RERANK_MODEL": str(tiny_qwen3_dir),
        "QWEN3_RAG_DEVICE": "cpu",
        "QWEN3_RAG_BACKEND": "memory",
        "COLUMNS": "100",
    }


@pytest.fixture(scope="module")
def app(env: dict[str, str]) -> typer.Typer:
    app = full_app()
    indexed = CliRunner().invoke(app, ["index", str(SAMPLES_ZH)], env=env)
    assert indexed.exit_code == 0, indexed.output
    assert "Indexed 5 files into" in indexed.output
    return app


@pytest.mark.parametrize(
    ("question", "source"),
    [
        ("解释量子纠缠", "quantum_entanglement.md"),
        ("什么是量子纠缠？", "quantum_entanglement.md"),
        ("光合作用的过程", "photosynthesis.md"),
    ],
)
def test_a_chinese_question_gets_the_chinese_passage_from_bm25(
    app: typer.Typer, env: dict[str, str], question: str, source: str
) -> None:
    asked = CliRunner().invoke(app, ["ask", question, "--json"], env=env)
    assert asked.exit_code == 0, asked.output
    answer = json.loads(asked.stdout)
    bm25 = answer["stages"]["bm25"]
    assert bm25 and Path(bm25[0]["source"]).name == source
    assert {Path(p["source"]).name for p in answer["passages"]} >= {source}, "the passage is cited"


def test_the_tables_keep_their_columns_with_wide_characters(app: typer.Typer, env: dict[str, str]) -> None:
    asked = CliRunner().invoke(app, ["ask", "解释量子纠缠", "--show-stages"], env=env)
    assert asked.exit_code == 0, asked.output
    assert "量子" in asked.output
    # rich measures a Han character as two columns: no line is wider than the terminal.
    from rich.cells import cell_len

    assert max(cell_len(line) for line in asked.output.splitlines()) <= 100, asked.output
