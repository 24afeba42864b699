"""Fixtures shared by every test: a real Qwen3 tokenizer and tiny random Qwen3 rerankers.

Real weights cannot be downloaded in CI, so models are built from `transformers.Qwen3Config`
with random weights and saved with `save_pretrained`; loading from a directory is then tested
for real. The tokenizer is the genuine Qwen3 one, rebuilt from the Qwen BPE ranks.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from qwen3_rerank import shared_models
from qwen3_rerank.testing import save_qwen3_tokenizer, save_random_qwen3


@pytest.fixture(scope="session")
def qwen3_tokenizer_dir(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Qwen3 tokenizer, built once and kept in pytest's cache across runs (it takes ~15 s);
    with the cache plugin off (``-p no:cacheprovider``) it is built once per session instead."""
    cache = getattr(pytestconfig, "cache", None)
    path = Path(cache.mkdir("qwen3-tokenizer")) if cache else tmp_path_factory.mktemp("qwen3-tokenizer")
    if not (path / "tokenizer.json").exists():
        save_qwen3_tokenizer(path)
    return path


@pytest.fixture(scope="session")
def tiny_qwen3_dir(tmp_path_factory: pytest.TempPathFactory, qwen3_tokenizer_dir: Path) -> Path:
    """A 2-layer random Qwen3ForCausalLM with the real tokenizer: loads like a Qwen3-Reranker."""
    return save_random_qwen3(
        tmp_path_factory.mktemp("tiny-qwen3"), tokenizer_path=qwen3_tokenizer_dir, initializer_range=0.2
    )


@pytest.fixture(scope="session")
def tiny_untied_qwen3_dir(tmp_path_factory: pytest.TempPathFactory, qwen3_tokenizer_dir: Path) -> Path:
    """Like `tiny_qwen3_dir` with a separate vocabulary head, as in Qwen3-Reranker-8B."""
    return save_random_qwen3(
        tmp_path_factory.mktemp("tiny-qwen3-untied"),
        tokenizer_path=qwen3_tokenizer_dir,
        initializer_range=0.2,
        tie_word_embeddings=False,
        seed=1,
    )


@pytest.fixture(autouse=True)
def no_models_left_behind() -> Iterator[None]:
    """Each test starts and ends with an empty model registry, so tests cannot leak state."""
    shared_models.clear()
    yield
    shared_models.clear()
