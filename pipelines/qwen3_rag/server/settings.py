"""The server's settings, read from ``QWEN3_SERVER_*`` environment variables.

Everything the operator can tune lives here, with a description that ``docs/server.md`` repeats
in its one table of environment variables; a test keeps the two in step. The served model and
its device use the pipeline's own variables (``QWEN3_RERANK_MODEL``, ``QWEN3_RAG_DEVICE``), so
``/v1/rerank`` and ``/v1/ask`` cannot disagree about them. Pydantic does the type conversion, so
``QWEN3_SERVER_MAX_DOCUMENTS=abc`` fails at start-up with an error naming the field.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from qwen3_rerank import DEFAULT_MODEL

ENV_PREFIX = "QWEN3_SERVER_"
# Settings shared with the pipeline (`qwen3_rag.settings.ENVIRONMENT`) keep the pipeline's names.
SHARED_ENV = {"model": "QWEN3_RERANK_MODEL", "device": "QWEN3_RAG_DEVICE"}


class ServerSettings(BaseModel):
    """How the HTTP server loads its model, sizes its batches and bounds its requests.

    Example:
        >>> ServerSettings.from_env({"QWEN3_SERVER_PORT": "9000"}, device="cpu").port
        9000
    """

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    model: str = Field(
        DEFAULT_MODEL, description="Hub id or local directory of the Qwen3-Reranker; fixed at start-up."
    )
    device: str | None = Field(
        None, description="`cpu`, `cuda`, `cuda:1`, `mps`; unset picks the best available."
    )
    dtype: str | None = Field(
        None, description="`float32`, `bfloat16`, `float16`; unset: float32 on CPU, bf16 on CUDA."
    )
    max_length: int = Field(8192, ge=16, description="Token limit of one prompt (query + document).")
    host: str = Field(
        "127.0.0.1", description="Address `qwen3-rerank serve` binds; the image sets `0.0.0.0`."
    )
    port: int = Field(8000, ge=1, le=65535, description="Port `qwen3-rerank serve` listens on.")
    max_documents: int = Field(
        1000, ge=1, description="Most documents one `/v1/rerank` request may carry (else 422)."
    )
    max_document_chars: int = Field(
        20_000, ge=1, description="Most characters per document or query (else 422)."
    )
    max_request_bytes: int = Field(
        2_000_000, ge=1024, description="Largest request body accepted (else 413)."
    )
    queue_size: int = Field(
        64, ge=1, description="Rerank requests waiting for the model before new ones get 429."
    )
    batch_documents: int = Field(
        256, ge=1, description="Most documents the micro-batcher scores in one model call."
    )
    # --- Work in tokens (issue 13): the limits Text Embeddings Inference and Cohere document --
    max_batch_tokens: int = Field(
        16_384,
        ge=1,
        description="Most prompt tokens the micro-batcher scores in one model call "
        "(a larger single request still runs, alone).",
    )
    max_queued_tokens: int = Field(
        262_144,
        ge=1,
        description="Most prompt tokens waiting for the model; a request that would pass it gets 429.",
    )
    max_tokens_per_doc: int = Field(
        4096,
        ge=1,
        description="Documents longer than this many tokens are truncated to it before scoring "
        "(as Cohere's `max_tokens_per_doc`); the prompt is still capped at `max_length`.",
    )
    # ------------------------------------------------------------------------------------------
    retry_after_seconds: int = Field(
        1, ge=1, description="`Retry-After` sent with a 429 when the queue is full."
    )
    rag: Literal["auto", "on", "off"] = Field(
        "auto",
        description="`/v1/ask` and `/v1/documents`: `on` requires the pipeline service, `off` disables it, "
        "`auto` enables it when it starts and serves reranking alone otherwise.",
    )
    sample_corpus: Path | None = Field(
        None, description="Folder of files indexed at start-up when the document store is empty."
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ServerSettings:
        """Settings from the environment (`env_name` names each variable; empty counts as unset),
        then ``overrides`` (``None`` values are ignored, so unset CLI flags fall through)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = environ.get(env_name(name), "")
            if raw.strip():
                values[name] = raw.strip()
        return cls(**(values | {name: value for name, value in overrides.items() if value is not None}))


def env_name(field: str) -> str:
    """The environment variable that sets ``field``: ``max_documents`` -> ``QWEN3_SERVER_MAX_DOCUMENTS``."""
    return SHARED_ENV.get(field, ENV_PREFIX + field.upper())
