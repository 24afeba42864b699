"""qwen3-rerank: exact, fast Qwen3-Reranker scores, in process.

Example:
    >>> from qwen3_rerank import Qwen3Reranker
    >>> reranker = Qwen3Reranker("Qwen/Qwen3-Reranker-0.6B")
    >>> [r.index for r in reranker.rerank("capital of France?", ["Berlin ...", "Paris ..."])]
    [1, 0]
"""

from .config import DEFAULT_MODEL, RerankerConfig
from .prompt import DEFAULT_INSTRUCTION
from .registry import ModelRegistry, shared_models
from .reranker import InvalidInput, PreparedRequest, Qwen3Reranker, RerankResult

__version__ = "0.1.0"

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
