"""The README's offline recipe: a tiny reranker saved whole or not at all, and the offline
embedder's directory printed by a command that fails loudly."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import load_file

from qwen3_rag.testing import main as embedder_path_command
from qwen3_rag.testing import minilm_model_dir
from qwen3_rerank import Qwen3Reranker
from qwen3_rerank.testing import main, save_random_qwen3

TINY = {"layers": 1, "hidden_size": 32, "intermediate_size": 64, "attention_heads": 2, "kv_heads": 1}


def test_the_recipe_saves_a_reranker_that_loads(tmp_path: Path) -> None:
    target = tmp_path / "tiny-reranker"
    main([str(target), "--layers", "1", "--hidden-size", "32", "--intermediate-size", "64"])
    with Qwen3Reranker(str(target), device="cpu") as reranker:
        assert 0.0 < reranker.score("q", ["d"])[0] < 1.0


def test_a_failed_save_leaves_no_directory(tmp_path: Path) -> None:
    target = tmp_path / "tiny-reranker"
    with pytest.raises(OSError):
        save_random_qwen3(target, tokenizer_path=tmp_path / "no-tokenizer-here", **TINY)
    assert list(tmp_path.iterdir()) == []  # neither the model nor a staging directory


def test_saving_again_replaces_the_previous_model(tmp_path: Path, qwen3_tokenizer_dir: Path) -> None:
    target = tmp_path / "tiny-reranker"
    save_random_qwen3(target, seed=0, tokenizer_path=qwen3_tokenizer_dir, **TINY)
    first = load_file(target / "model.safetensors")
    save_random_qwen3(target, seed=1, tokenizer_path=qwen3_tokenizer_dir, **TINY)
    second = load_file(target / "model.safetensors")
    assert any((first[name] != second[name]).any() for name in first)
    assert [path.name for path in tmp_path.iterdir()] == ["tiny-reranker"]


def test_a_directory_of_other_files_is_refused(tmp_path: Path, qwen3_tokenizer_dir: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a saved model"):
        save_random_qwen3(tmp_path, tokenizer_path=qwen3_tokenizer_dir, **TINY)
    assert [path.name for path in tmp_path.iterdir()] == ["notes.txt"]


def test_the_embedder_path_command_prints_the_directory(capsys: pytest.CaptureFixture[str]) -> None:
    # In process: ``python -m qwen3_rag.testing`` only calls this ``main``.
    embedder_path_command(["embedder-path"])
    assert Path(capsys.readouterr().out.strip()) == minilm_model_dir()
    assert (minilm_model_dir() / "config.json").is_file()
