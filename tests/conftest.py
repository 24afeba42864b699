"""Fixtures shared by every test: a real Qwen3 tokenizer and tiny random Qwen3 rerankers.

Real weights cannot be downloaded in CI, so models are built from `transformers.Qwen3Config`
with random weights and saved with `save_pretrained`; loading from a directory is then tested
for real. The tokenizer is the genuine Qwen3 one, rebuilt from the Qwen BPE ranks.

Building them is the suite's costliest set-up (the tokenizer takes ~15 s of CPU), so each is built
once and kept on disk (`asset_cache`): across test sessions, and shared by pytest-xdist's workers,
which wait on a file lock while the first one builds it. Tests only read these directories; a test
that changes a model copies it first.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import inspect
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from qwen3_rerank import shared_models, testing
from qwen3_rerank.testing import qwen_bpe_ranks_file, save_qwen3_tokenizer, save_random_qwen3

ASSET_CACHE_VARIABLE = "QWEN3_RERANK_TEST_CACHE"
TESTS_DIR = Path(__file__).parent
# Tests that share one server per session (the Elasticsearch stand-in's container, the compose stack,
# the browser's live app) run on one pytest-xdist worker each (`--dist loadgroup` in .ci/test), so
# that a run starts each server once and no two workers start the same one.
XDIST_GROUPS = {"integration": "elasticsearch", "stack": "stack", "browser": "browser"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = item.path.relative_to(TESTS_DIR).parts if item.path.is_relative_to(TESTS_DIR) else ()
        group = XDIST_GROUPS.get(parts[0]) if len(parts) > 1 else None
        if group:
            item.add_marker(pytest.mark.xdist_group(group))


def asset_cache(config: pytest.Config) -> Path:
    """Where built test assets are kept: ``$QWEN3_RERANK_TEST_CACHE``, else ``.cache/tests`` in the
    checkout (git-ignored; CI's own folder, so a fresh clone builds them once per run)."""
    configured = os.environ.get(ASSET_CACHE_VARIABLE)
    return Path(configured) if configured else config.rootpath / ".cache" / "tests"


def _assets_version() -> str:
    """Changes whenever what the assets are built from does: the builder's code, the BPE ranks, and
    the libraries that write and read them."""
    digest = hashlib.sha256(inspect.getsource(testing).encode())
    digest.update(qwen_bpe_ranks_file().read_bytes())
    for package in ("torch", "transformers", "tokenizers"):
        digest.update(f"{package}=={importlib.metadata.version(package)};".encode())
    return digest.hexdigest()[:16]


def cached_asset(config: pytest.Config, name: str, build: Callable[[Path], object]) -> Path:
    """``build(path)`` once per version of the assets, whichever session or xdist worker asks first;
    the others wait on the lock and then read. ``build`` must write ``path`` whole or not at all
    (`save_qwen3_tokenizer` and `save_random_qwen3` do), so a crashed build leaves nothing behind."""
    path = asset_cache(config) / _assets_version() / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock"):
        if not path.is_dir():
            build(path)
    return path


@pytest.fixture(scope="session")
def qwen3_tokenizer_dir(pytestconfig: pytest.Config) -> Path:
    """The Qwen3 tokenizer, built once (it takes ~15 s) and kept in the asset cache."""
    return cached_asset(pytestconfig, "qwen3-tokenizer", save_qwen3_tokenizer)


def _tiny_qwen3(config: pytest.Config, name: str, tokenizer: Path, **shape: object) -> Path:
    return cached_asset(
        config,
        name,
        lambda path: save_random_qwen3(path, tokenizer_path=tokenizer, initializer_range=0.2, **shape),
    )


@pytest.fixture(scope="session")
def tiny_qwen3_dir(pytestconfig: pytest.Config, qwen3_tokenizer_dir: Path) -> Path:
    """A 2-layer random Qwen3ForCausalLM with the real tokenizer: loads like a Qwen3-Reranker."""
    return _tiny_qwen3(pytestconfig, "tiny-qwen3", qwen3_tokenizer_dir)


@pytest.fixture(scope="session")
def tiny_untied_qwen3_dir(pytestconfig: pytest.Config, qwen3_tokenizer_dir: Path) -> Path:
    """Like `tiny_qwen3_dir` with a separate vocabulary head, as in Qwen3-Reranker-8B."""
    return _tiny_qwen3(
        pytestconfig, "tiny-qwen3-untied", qwen3_tokenizer_dir, tie_word_embeddings=False, seed=1
    )


@pytest.fixture(scope="session", autouse=True)
def tokenizers_loaded_once(pytestconfig: pytest.Config) -> Iterator[None]:
    """Each test starts with an empty model registry (below), so each would load the Qwen3
    tokenizer again and rebuild its text-only copy: ~3.5 s of CPU per model, most of a small test.
    The tokenizers of the session's read-only assets are loaded once and shared instead (the core
    only reads them); the weights still load for real in every test, and any other directory (a
    test's own copy of a model) loads as usual."""
    from qwen3_rerank import loading

    assets = asset_cache(pytestconfig).resolve()
    real = loading.AutoTokenizer
    loaded: dict[str, Any] = {}
    lock = threading.Lock()

    class AutoTokenizerOncePerAsset:
        @staticmethod
        def from_pretrained(name: str, **options: Any) -> Any:
            path = Path(name).expanduser().resolve()
            if not path.is_relative_to(assets):
                return real.from_pretrained(name, **options)
            key = f"{path}|{sorted(options.items())!r}"
            with lock:
                if key not in loaded:
                    loaded[key] = real.from_pretrained(name, **options)
                return loaded[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loading, "AutoTokenizer", AutoTokenizerOncePerAsset)
        yield


@pytest.fixture(autouse=True)
def no_models_left_behind() -> Iterator[None]:
    """Each test starts and ends with an empty model registry, so tests cannot leak state."""
    shared_models.clear()
    yield
    shared_models.clear()
