"""The server's settings: the reranker's (``QWEN3_RERANK_*``, ``QWEN3_RAG_DEVICE``) plus its own
``QWEN3_SERVER_*`` ones, read by the same code as the pipeline's (`qwen3_rag.settings`).

Sharing `RerankerSettings` means ``/v1/rerank`` and ``/v1/ask`` cannot disagree about the model
or its device. ``python -m qwen3_rag.server.settings`` prints the table of every variable that
``docs/configuration.md`` holds; a test keeps the two in step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import DirectoryPath, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from qwen3_rag.server.schemas import MAX_LIST_ITEMS
from qwen3_rag.settings import (
    PositiveInt,
    RerankerSettings,
    Settings,
    env,
    markdown_table,
    variables,
    with_table,
)

Port = Annotated[int, Field(ge=1, le=65535)]
PositiveFloat = Annotated[float, Field(gt=0)]


class ServerSettings(RerankerSettings):
    """How the HTTP server loads its model, sizes its batches and bounds its requests.

    Example:
        >>> ServerSettings.from_env({"QWEN3_SERVER_PORT": "9000"}, device="cpu").port
        9000
    """

    host: str = env(
        "QWEN3_SERVER_HOST", "127.0.0.1", "Address `qwen3-rerank serve` binds; the image sets `0.0.0.0`."
    )
    port: Port = env("QWEN3_SERVER_PORT", 8000, "Port `qwen3-rerank serve` listens on.")
    served_model_names: Annotated[tuple[str, ...], NoDecode] = env(
        "QWEN3_SERVER_SERVED_MODEL_NAMES",
        (),
        "Comma-separated names a request's `model` may use besides the served id and its last path "
        "part (e.g. `rerank-v3.5`, a client's default); the first is the name responses carry. "
        "Other names get 404.",
    )
    max_documents: Annotated[int, Field(ge=1, le=MAX_LIST_ITEMS)] = env(
        "QWEN3_SERVER_MAX_DOCUMENTS", 1000, "Most documents one `/v1/rerank` request may carry (else 422)."
    )
    max_document_chars: PositiveInt = env(
        "QWEN3_SERVER_MAX_DOCUMENT_CHARS", 20_000, "Most characters per document or query (else 422)."
    )
    max_question_chars: PositiveInt = env(
        "QWEN3_SERVER_MAX_QUESTION_CHARS", 2000, "Most characters in a `/v1/ask` question (else 422)."
    )
    max_question_tokens: PositiveInt = env(
        "QWEN3_SERVER_MAX_QUESTION_TOKENS", 512, "Most reranker tokens in a `/v1/ask` question (else 422)."
    )
    max_request_bytes: Annotated[int, Field(ge=1024)] = env(
        "QWEN3_SERVER_MAX_REQUEST_BYTES", 2_000_000, "Largest request body accepted (else 413)."
    )
    queue_size: PositiveInt = env(
        "QWEN3_SERVER_QUEUE_SIZE", 64, "Rerank requests waiting for the model before new ones get 429."
    )
    batch_documents: PositiveInt = env(
        "QWEN3_SERVER_BATCH_DOCUMENTS", 256, "Most documents the micro-batcher scores in one model call."
    )
    # Work in tokens, the limits Text Embeddings Inference and Cohere document.
    max_batch_tokens: PositiveInt = env(
        "QWEN3_SERVER_MAX_BATCH_TOKENS",
        16_384,
        "Most prompt tokens the micro-batcher scores in one model call (a larger request runs alone).",
    )
    max_queued_tokens: PositiveInt = env(
        "QWEN3_SERVER_MAX_QUEUED_TOKENS",
        262_144,
        "Most prompt tokens waiting for the model; a request that would pass it gets 429.",
    )
    max_tokens_per_doc: PositiveInt = env(
        "QWEN3_SERVER_MAX_TOKENS_PER_DOC",
        4096,
        "Documents are truncated to this many tokens before scoring (Cohere's `max_tokens_per_doc`).",
    )
    retry_after_seconds: PositiveInt = env(
        "QWEN3_SERVER_RETRY_AFTER_SECONDS", 1, "`Retry-After` sent with a 429 when the queue is full."
    )
    rag: Literal["auto", "on", "off"] = env(
        "QWEN3_SERVER_RAG",
        "auto",
        "`/v1/ask` and `/v1/documents`: `on` requires the pipeline, `off` disables it, `auto` serves "
        "reranking alone if it does not start.",
    )
    sample_corpus: DirectoryPath | None = env(
        "QWEN3_SERVER_SAMPLE_CORPUS", None, "Folder indexed at start-up when the document store is empty."
    )

    # The HTTP edge: access control, limits (docs/server.md, "Security, limits and observability").
    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = env(
        "QWEN3_SERVER_API_KEYS",
        (),
        "Comma-separated API keys; when set, the API needs `Authorization: Bearer <key>` (else 401). "
        "Health checks, `/metrics` and the page stay open (secret).",
    )
    allow_writes: bool = env(
        "QWEN3_SERVER_ALLOW_WRITES",
        False,
        "Serve `POST /v1/documents` (index, replace a source); off: 403.",
    )
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = env(
        "QWEN3_SERVER_ALLOWED_HOSTS",
        (),
        "Comma-separated `Host` names accepted (`*.example.com` allowed, `*` any); unset: localhost, "
        "127.0.0.1, [::1] and `host`. Others get 400 (DNS rebinding).",
    )
    ask_concurrency: PositiveInt = env(
        "QWEN3_SERVER_ASK_CONCURRENCY", 4, "`/v1/ask` pipeline calls at once; one more gets 429."
    )
    pipeline_timeout_s: PositiveFloat = env(
        "QWEN3_SERVER_PIPELINE_TIMEOUT_S",
        30.0,
        "Seconds an ask or documents call may take (else 504).",
    )
    readiness_timeout_s: PositiveFloat = env(
        "QWEN3_SERVER_READINESS_TIMEOUT_S", 0.5, "Seconds `/readyz` waits for the document store."
    )
    limit_concurrency: PositiveInt = env(
        "QWEN3_SERVER_LIMIT_CONCURRENCY",
        256,
        "Connections and requests served at once; more get 503.",
    )
    timeout_keep_alive_s: PositiveInt = env(
        "QWEN3_SERVER_TIMEOUT_KEEP_ALIVE_S", 5, "Seconds an idle keep-alive connection stays open."
    )
    header_timeout_s: PositiveFloat = env(
        "QWEN3_SERVER_HEADER_TIMEOUT_S", 10.0, "Seconds a client may take to send a request's headers."
    )
    body_timeout_s: PositiveFloat = env(
        "QWEN3_SERVER_BODY_TIMEOUT_S", 30.0, "Seconds a client may take to send a request's body (else 408)."
    )
    max_header_bytes: Annotated[int, Field(ge=1024)] = env(
        "QWEN3_SERVER_MAX_HEADER_BYTES",
        16_384,
        "Largest request head (request line and headers); larger gets 431.",
    )
    max_waiting_per_client: PositiveInt = env(
        "QWEN3_SERVER_MAX_WAITING_PER_CLIENT",
        128,
        "Connections one client address may hold waiting for a request head (slowloris); more are "
        "closed at once.",
    )

    @field_validator("api_keys", "allowed_hosts", "served_model_names", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        """``"a, b"`` (an environment variable) becomes ``("a", "b")``; empty items are dropped."""
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value


def env_name(field: str) -> str:
    """The environment variable that sets ``field``: ``max_documents`` -> ``QWEN3_SERVER_MAX_DOCUMENTS``."""
    return variables(ServerSettings.model_fields[field])[0]


def main() -> None:
    """``python -m qwen3_rag.server.settings [PAGE]``: print the table, or rewrite it in PAGE."""
    import sys

    if len(sys.argv) < 2:
        print(markdown_table(Settings, ServerSettings), end="")
        return
    page = Path(sys.argv[1])
    page.write_text(with_table(page.read_text(encoding="utf-8"), Settings, ServerSettings), encoding="utf-8")


if __name__ == "__main__":
    main()
