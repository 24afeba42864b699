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

from typing import TYPE_CHECKING

from .lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, [*__all__, *globals()])
