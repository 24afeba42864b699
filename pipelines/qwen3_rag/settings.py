"""Settings of the pipelines and the server: one pydantic-settings system, one name per knob.

Every knob is read, in order of precedence, from flags (keyword overrides), the environment,
a ``.env`` file in the working directory, then its default; the CLI, the evaluation and the HTTP
server therefore build the very same pipeline. Each field names its one environment variable,
with one prefix per concern:

* ``QWEN3_RERANK_*``: the reranker (`RerankerSettings`, which becomes a `RerankerConfig`);
* ``QWEN3_RAG_*``: retrieval and generation (`Settings`); ``QWEN3_RAG_DEVICE`` places every model;
* ``QWEN3_SERVER_*``: the HTTP server (`qwen3_rag.server.settings.ServerSettings`);
* the conventional ``ES_URL``, ``ES_API_KEY``, ..., ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``.

The mechanism (`env`, `SettingsBase.from_env`) and `RerankerSettings` live in
`qwen3_rerank.settings`, so the core's ``rerank`` command reads the same variables.
``docs/configuration.md`` holds the table of variables, generated from these models
(``python -m qwen3_rag.server.settings`` prints it; a test keeps the page in step).

Example:
    >>> settings = Settings.from_env(backend="elasticsearch", top_n=3)
    >>> settings.es_url
    'http://localhost:9200'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from qwen3_rerank.settings import (  # re-exported: the settings API lives in one place
    NonNegativeInt,
    PositiveInt,
    RerankerSettings,
    SettingsBase,
    env,
    markdown_table,
    variables,
    with_table,
)

Backend = Literal["memory", "elasticsearch"]
Framework = Literal["haystack", "llamaindex"]
LlmKind = Literal["none", "openai", "hf"]
Fusion = Literal["auto", "client", "elasticsearch"]
IndexLayoutChoice = Literal["auto", "qwen3", "haystack", "llamaindex"]
FusionMethod = Literal["rrf", "convex"]


def _lower_case(name: str) -> str:
    if not name or name != name.lower():
        raise ValueError(f"must be a non-empty lower-case name, as Elasticsearch requires; got {name!r}")
    return name


LowerCaseName = Annotated[str, AfterValidator(_lower_case)]


def _language(name: str) -> str:
    from .stores.analysis import check_language

    check_language(name)
    return name


Language = Annotated[str, AfterValidator(_language)]
UnitInterval = Annotated[float, Field(ge=0, le=1)]

DEFAULT_EMBEDDING_MODEL = "Qwen/Qwen3-Embedding-0.6B"
DEFAULT_INDEX = "qwen3-rag"
DEFAULT_ES_URL = "http://localhost:9200"

# Reranking costs about 0.9 GFLOP per token with the 0.6B model. Measured on SciFact train
# (docs/evaluation.md), 160-token chunks put more relevant documents before the reranker than
# longer chunks at every token budget, so the chunk size is one for all devices (an index serves
# CPU and GPU alike) and only the number of candidates follows the device: 12 (~1,400 tokens,
# seconds on a laptop CPU) or 80 (~7,800 tokens, a fraction of a second on a GPU).
CPU_CANDIDATES = 12
GPU_CANDIDATES = 80
DEFAULT_CHUNK_SIZE = 160
# From this many passages on, the embedded store searches unfiltered dense queries through an
# HNSW index. Below it exact search takes tens of milliseconds and a rebuild seconds; above it HNSW
# answers in milliseconds with recall@100 0.995-0.999 against exact search on real (SciFact,
# MiniLM) vectors, for a much longer build (docs/evaluation.md).
DEFAULT_ANN_THRESHOLD = 250_000
# Retrieval defaults shared by both stores, `qwen3-rerank eval` and benchmarks/retrieval.py:
# Lucene's BM25 with bm25s' k1/b (better than Elasticsearch's 1.2/0.75 on BEIR), and text analysis
# by script (CJK bigrams, English words; stores/analysis.py).
DEFAULT_BM25_K1 = 0.9
DEFAULT_BM25_B = 0.4
DEFAULT_LANGUAGE = "auto"
# How long a write waits for another process writing the same embedded store.
DEFAULT_WRITE_LOCK_TIMEOUT_S = 10.0


class Settings(RerankerSettings):
    """Everything that defines a pipeline: the reranker's settings plus retrieval (``QWEN3_RAG_*``),
    Elasticsearch (``ES_*``) and the LLM. Build it with `Settings.from_env`."""

    backend: Backend = env(
        "QWEN3_RAG_BACKEND", "memory", "`memory` (embedded, no server) or `elasticsearch`."
    )
    framework: Framework = env(
        "QWEN3_RAG_FRAMEWORK", "haystack", "`haystack` or `llamaindex` composes the pipeline."
    )
    data_dir: Path | None = env(
        "QWEN3_RAG_DATA_DIR", None, "Embedded store directory; unset: `$XDG_CACHE_HOME/qwen3-rag`."
    )
    index_name: LowerCaseName = env(
        "QWEN3_RAG_INDEX", DEFAULT_INDEX, "Elasticsearch index (and embedded store) name, lower case."
    )
    embedding_model: str = env(
        "QWEN3_RAG_EMBEDDING_MODEL",
        DEFAULT_EMBEDDING_MODEL,
        "sentence-transformers model for dense retrieval.",
    )
    candidates: PositiveInt | None = env(
        "QWEN3_RAG_CANDIDATES",
        None,
        f"Passages retrieved and sent to the reranker; unset: {CPU_CANDIDATES} on CPU, "
        f"{GPU_CANDIDATES} on GPU.",
        also=("QWEN3_RAG_TOP_K",),
    )
    top_n: PositiveInt = env("QWEN3_RAG_TOP_N", 5, "Passages kept after reranking and given to the LLM.")
    chunk_size: PositiveInt = env(
        "QWEN3_RAG_CHUNK_SIZE",
        DEFAULT_CHUNK_SIZE,
        "Largest chunk in tokens at indexing (chunks keep sentences whole).",
    )
    chunk_overlap: NonNegativeInt = env(
        "QWEN3_RAG_CHUNK_OVERLAP", 32, "Tokens shared by neighbouring chunks."
    )
    fusion: Fusion = env(
        "QWEN3_RAG_FUSION",
        "auto",
        "RRF by the `client`, by `elasticsearch`, or `auto` (the server's if licensed).",
    )
    rrf_rank_constant: PositiveInt = env("QWEN3_RAG_RRF_RANK_CONSTANT", 60, "RRF's k.")
    fusion_method: FusionMethod = env(
        "QWEN3_RAG_FUSION_METHOD",
        "rrf",
        "`rrf` (reciprocal rank fusion) or `convex` (min-max normalised scores, weighted; client-side).",
    )
    fusion_weight: UnitInterval = env(
        "QWEN3_RAG_FUSION_WEIGHT", 0.5, "The dense weight of `convex` fusion (BM25 gets the rest)."
    )
    language: Language = env(
        "QWEN3_RAG_LANGUAGE",
        DEFAULT_LANGUAGE,
        "Text analysis of both backends: Chinese, Japanese and Korean as character bigrams, other "
        "words by Unicode word boundaries stemmed in this language (an Elasticsearch language "
        "analyzer name: `english`, `german`, ...), `none` (unstemmed), or `auto` (each passage's "
        "detected language; one BM25 part or field per language).",
    )
    bm25_k1: Annotated[float, Field(ge=0)] = env(
        "QWEN3_RAG_BM25_K1",
        DEFAULT_BM25_K1,
        "BM25's term-frequency saturation (Lucene's scorer, both backends).",
    )
    bm25_b: UnitInterval = env(
        "QWEN3_RAG_BM25_B", DEFAULT_BM25_B, "BM25's length normalisation (both backends)."
    )
    ann_threshold: NonNegativeInt = env(
        "QWEN3_RAG_ANN_THRESHOLD",
        DEFAULT_ANN_THRESHOLD,
        "Passages from which the embedded store adds an HNSW index for unfiltered dense search; "
        "0: always exact (docs/evaluation.md has the measured recall).",
    )
    write_lock_timeout_s: Annotated[float, Field(ge=0)] = env(
        "QWEN3_RAG_WRITE_LOCK_TIMEOUT_S",
        DEFAULT_WRITE_LOCK_TIMEOUT_S,
        "Seconds a write waits for another process writing the same embedded store (one writer "
        "at a time) before it is refused naming that process; 0: refuse at once.",
    )
    index_layout: IndexLayoutChoice = env(
        "QWEN3_RAG_INDEX_LAYOUT",
        "auto",
        "Who wrote the Elasticsearch index: `qwen3` (ours), `haystack`, `llamaindex`, or `auto` "
        "(recognised from its mapping). Indices of other layouts are read-only.",
    )
    llm: LlmKind = env(
        "QWEN3_RAG_LLM",
        "none",
        "`none` (answer with the ranked passages), `openai` (any compatible endpoint), `hf`.",
    )
    llm_model: str | None = env("QWEN3_RAG_LLM_MODEL", None, "The LLM's model name or directory.")
    max_new_tokens: PositiveInt = env("QWEN3_RAG_MAX_NEW_TOKENS", 256, "Longest answer the LLM may write.")
    llm_base_url: str | None = env("OPENAI_BASE_URL", None, "OpenAI-compatible endpoint (vLLM, Ollama).")
    llm_api_key: str | None = env("OPENAI_API_KEY", None, "Key of that endpoint (secret).")
    es_url: str = env("ES_URL", DEFAULT_ES_URL, "Elasticsearch URL.")
    es_api_key: str | None = env("ES_API_KEY", None, "Elasticsearch API key (secret).")
    es_username: str | None = env("ES_USERNAME", None, "Elasticsearch basic-auth user.")
    es_password: str | None = env("ES_PASSWORD", None, "Elasticsearch basic-auth password (secret).")
    es_ca_certs: str | None = env("ES_CA_CERTS", None, "CA bundle to verify Elasticsearch's TLS certificate.")
    es_verify_certs: bool = env("ES_VERIFY_CERTS", True, "Verify Elasticsearch's TLS certificate.")

    @model_validator(mode="after")
    def _resolve(self) -> Settings:
        """Device-dependent defaults, and checks that span fields."""
        if self.candidates is None:
            candidates = GPU_CANDIDATES if _wants_accelerator(self.device) else CPU_CANDIDATES
            object.__setattr__(self, "candidates", candidates)
        if self.data_dir is None:
            object.__setattr__(self, "data_dir", default_data_dir())
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser())
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap must be smaller than chunk_size ({self.chunk_size}); got {self.chunk_overlap}"
            )
        if self.llm != "none" and not self.llm_model:
            raise ValueError(f"llm={self.llm!r} needs llm_model (flag --llm-model or QWEN3_RAG_LLM_MODEL)")
        return self


def default_data_dir() -> Path:
    """Where the embedded store lives: ``$XDG_CACHE_HOME/qwen3-rag`` (``~/.cache/qwen3-rag``)."""
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "qwen3-rag"


def accelerator_available() -> bool:
    """Whether torch sees a CUDA or MPS device (decides the CPU or GPU defaults)."""
    import torch

    return torch.cuda.is_available() or torch.backends.mps.is_available()


def _wants_accelerator(device: str | None) -> bool:
    if device is not None:
        return not device.startswith("cpu")
    return accelerator_available()


ENVIRONMENT: dict[str, str] = {name: variables(info)[0] for name, info in Settings.model_fields.items()}
"""Field name -> its environment variable, for the pipeline's settings."""


__all__ = [
    "ENVIRONMENT",
    "NonNegativeInt",
    "PositiveInt",
    "RerankerSettings",
    "Settings",
    "SettingsBase",
    "env",
    "markdown_table",
    "variables",
    "with_table",
]
