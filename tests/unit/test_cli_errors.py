"""Every command, given a missing model, a missing file or malformed input, exits non-zero with
one line that says what to fix, and no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from qwen3_rag.testing import SAMPLES_DIR, minilm_model_dir
from qwen3_rerank.cli import full_app

BEIR_DIR = SAMPLES_DIR.parent / "samples_beir"
MISSING = "/no/such/model"


@pytest.fixture(scope="module")
def indexed_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An embedded store holding one small file, so that `ask` reaches the reranker."""
    store = tmp_path_factory.mktemp("store")
    result = CliRunner().invoke(
        full_app(),
        ["index", str(SAMPLES_DIR / "water.md"), "--data-dir", str(store), "--device", "cpu"],
        env={"QWEN3_RAG_EMBEDDING_MODEL": str(minilm_model_dir())},
    )
    assert result.exit_code == 0, result.output
    return store


@pytest.fixture
def env(indexed_store: Path, tiny_qwen3_dir: Path) -> dict[str, str]:
    return {
        "QWEN3_RAG_DATA_DIR": str(indexed_store),
        "QWEN3_RAG_EMBEDDING_MODEL": str(minilm_model_dir()),
        "QWEN3_RERANK_MODEL": str(tiny_qwen3_dir),
        "QWEN3_RAG_DEVICE": "cpu",
        "QWEN3_RAG_BACKEND": "memory",
    }


CASES = {
    # command: (missing model, missing file, malformed input), each (arguments, stdin, expected words)
    "rerank": [
        (
            ["rerank", "q", "-", "--model", MISSING],
            "a document",
            "there is no directory '/no/such/model'. Set --reranker-model or QWEN3_RERANK_MODEL.",
        ),
        (["rerank", "q", "/no/such/docs.txt"], None, "cannot read the documents '/no/such/docs.txt'"),
        (["rerank", "q", "-"], '["unclosed', "is not valid JSON"),
        (["rerank", "q", "-"], '{"id": 1}\n{"id": 2}', "JSON Lines record 1 has no string field 'text'"),
        (["rerank", "q", "-"], "", "no documents in stdin"),
    ],
    "index": [
        (
            ["index", str(SAMPLES_DIR / "water.md"), "--set", f"embedding_model={MISSING}"],
            None,
            "no directory '/no/such/model'. Set --embedding-model or QWEN3_RAG_EMBEDDING_MODEL.",
        ),
        (["index", "/no/such/folder"], None, "no such file or directory: /no/such/folder"),
        (["index", str(SAMPLES_DIR), "--set", "chunk_size=many"], None, "chunk_size (QWEN3_RAG_CHUNK_SIZE)"),
    ],
    "ask": [
        (["ask", "What is water?", "--reranker-model", MISSING], None, "cannot load the reranker"),
        (["ask", "What is water?", "--data-dir", "/no/such/store"], None, "nothing is indexed in"),
        (["ask", "What is water?", "--set", "top_n"], None, "--set: expected NAME=VALUE"),
    ],
    "eval": [
        (["eval", str(BEIR_DIR), "--stages", "rerank", "--reranker-model", MISSING], None, "cannot load"),
        (["eval", "/no/such/dataset"], None, "no dataset folder '/no/such/dataset'"),
        (["eval", str(BEIR_DIR), "--stages", "bm25,magic"], None, "magic"),
    ],
    "serve": [
        (
            ["serve", "--model", MISSING, "--rag", "off"],
            None,
            "there is no directory '/no/such/model'. Set --reranker-model or QWEN3_RERANK_MODEL.",
        ),
        (["serve", "--sample-corpus", "/no/such/corpus"], None, "sample_corpus (QWEN3_SERVER_SAMPLE_CORPUS)"),
        (["serve", "--set", "queue_size=-3"], None, "queue_size (QWEN3_SERVER_QUEUE_SIZE)"),
    ],
}


@pytest.mark.parametrize(
    ("arguments", "stdin", "expected"),
    [case for cases in CASES.values() for case in cases],
    ids=[f"{command}-{n}" for command, cases in CASES.items() for n in range(len(cases))],
)
def test_a_failure_is_one_line_without_a_traceback(
    env: dict[str, str], arguments: list[str], stdin: str | None, expected: str, tmp_path: Path
) -> None:
    if arguments[0] == "eval":
        arguments = [*arguments, "--output-dir", str(tmp_path / "report"), "--data-dir", str(tmp_path / "s")]
    result = CliRunner().invoke(full_app(), arguments, env=env, input=stdin)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert expected in lines[0]


@pytest.mark.parametrize("module", ["sentence_transformers", "bm25s", "usearch", "semantic_text_splitter"])
def test_a_missing_pipelines_package_suggests_an_extra_of_the_readme_table(module: str) -> None:
    from qwen3_rerank.extras import install_hint

    hint = install_hint(ModuleNotFoundError(f"No module named {module!r}", name=module))
    assert hint == "pip install 'qwen3-rerank[haystack-pipelines]' (or [llamaindex-pipelines])"
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert "`pip install 'qwen3-rerank[llamaindex-pipelines]'`" in readme
    assert "'qwen3-rerank[haystack-pipelines]'" in readme and "qwen3-rerank[rag]" not in readme
