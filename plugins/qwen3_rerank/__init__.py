"""qwen3-rerank: exact, fast Qwen3-Reranker scores, in process.

Example:
    >>> from qwen3_rerank import Qwen3Reranker
    >>> reranker = Qwen3Reranker("Qwen/Qwen3-Reranker-0.6B")
    >>> [r.index for r in reranker.rerank("capital of France?", ["Berlin ...", "Paris ..."])]
    [1, 0]

The names below load on first use: ``qwen3-rerank --help`` and ``--version`` import this
package, and must answer without first importing torch and transformers (seconds on a busy machine).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import DEFAULT_MODEL, RerankerConfig
    from .prompt import DEFAULT_INSTRUCTION
    from .registry import ModelRegistry, shared_models
    from .reranker import InvalidInput, PreparedRequest, Qwen3Reranker, RerankResult

__version__ = "0.1.0"

_EXPORTS = {
    "DEFAULT_INSTRUCTION": ".prompt",
    "DEFAULT_MODEL": ".config",
    "InvalidInput": ".reranker",
    "ModelRegistry": ".registry",
    "PreparedRequest": ".reranker",
    "Qwen3Reranker": ".reranker",
    "RerankResult": ".reranker",
    "RerankerConfig": ".config",
    "shared_models": ".registry",
}

__all__ = [
    "DEFAULT_INSTRUCTION",
    "DEFAULT_MODEL",
    "InvalidInput",
    "ModelRegistry",
    "PreparedRequest",
    "Qwen3Reranker",
    "RerankResult",
    "RerankerConfig",
    "__version__",
    "shared_models",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
