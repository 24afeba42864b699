"""Settings of a RAG pipeline: one dataclass, filled from flags, then the environment, then defaults.

Every knob a user can turn lives here so that the CLI, the evaluation and the HTTP server build
the very same pipeline. The environment variables (``QWEN3_RERANK_MODEL``,
``QWEN3_RAG_EMBEDDING_MODEL``, ``ES_URL``, ...) are what let the whole pipeline run offline with
small local models, and what containers are configured with.

Example:
    >>> settings = Settings.from_env(backend="elasticsearch", top_n=3)
    >>> settings.es_url
    'http://localhost:9200'
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from qwen3_rerank import DEFAULT_MODEL

Backend = Literal["memory", "elasticsearch"]
Framework = Literal["haystack", "llamaindex"]
LlmKind = Literal["none", "openai", "hf"]
Fusion = Literal["auto", "client", "elasticsearch"]

DEFAULT_EMBEDDING_MODEL = "Qwen/Qwen3-Embedding-0.6B"
DEFAULT_INDEX = "qwen3-rag"
DEFAULT_ES_URL = "http://localhost:9200"

# Reranking costs about 0.9 GFLOP per token with the 0.6B model. On a CPU, 12 candidates of
# ~160 tokens (~200 with the prompt) are ~2.2 TFLOP, seconds on a laptop; 50 chunks of 400 tokens
# are ~18 TFLOP, a fraction of a second on a GPU. See docs/pipelines.md.
CPU_DEFAULTS = {"top_k": 12, "chunk_size": 160}
GPU_DEFAULTS = {"top_k": 50, "chunk_size": 400}

# field name -> environment variable (read as text and converted to the field's type).
ENVIRONMENT: dict[str, str] = {
    "backend": "QWEN3_RAG_BACKEND",
    "framework": "QWEN3_RAG_FRAMEWORK",
    "data_dir": "QWEN3_RAG_DATA_DIR",
    "es_url": "ES_URL",
    "es_api_key": "ES_API_KEY",
    "es_username": "ES_USERNAME",
    "es_password": "ES_PASSWORD",
    "es_ca_certs": "ES_CA_CERTS",
    "es_verify_certs": "ES_VERIFY_CERTS",
    "index_name": "QWEN3_RAG_INDEX",
    "embedding_model": "QWEN3_RAG_EMBEDDING_MODEL",
    "reranker_model": "QWEN3_RERANK_MODEL",
    "device": "QWEN3_RAG_DEVICE",
    "top_k": "QWEN3_RAG_TOP_K",
    "top_n": "QWEN3_RAG_TOP_N",
    "chunk_size": "QWEN3_RAG_CHUNK_SIZE",
    "fusion": "QWEN3_RAG_FUSION",
    "instruction": "QWEN3_RERANK_INSTRUCTION",
    "llm": "QWEN3_RAG_LLM",
    "llm_model": "QWEN3_RAG_LLM_MODEL",
    "max_new_tokens": "QWEN3_RAG_MAX_NEW_TOKENS",
    "llm_base_url": "OPENAI_BASE_URL",
    "llm_api_key": "OPENAI_API_KEY",
}

# --- retrieval tuning (issue 11): analysis, BM25 parameters, ANN threshold, fusion method -------------
FusionMethod = Literal["rrf", "convex"]
RETRIEVAL_ENVIRONMENT: dict[str, str] = {
    "language": "QWEN3_RAG_LANGUAGE",
    "bm25_k1": "QWEN3_RAG_BM25_K1",
    "bm25_b": "QWEN3_RAG_BM25_B",
    "ann_threshold": "QWEN3_RAG_ANN_THRESHOLD",
    "fusion_method": "QWEN3_RAG_FUSION_METHOD",
    "fusion_weight": "QWEN3_RAG_FUSION_WEIGHT",
}
ENVIRONMENT.update(RETRIEVAL_ENVIRONMENT)


def _check_retrieval(settings: Settings) -> None:
    """Validate the retrieval-tuning fields (one place, so the block ports as a unit)."""
    from .stores.analysis import check_language

    check_language(settings.language)
    _check_choice("fusion_method", settings.fusion_method, get_args(FusionMethod))
    if not settings.bm25_k1 >= 0:
        raise ValueError(f"bm25_k1 must be >= 0, got {settings.bm25_k1!r}")
    if not 0 <= settings.bm25_b <= 1:
        raise ValueError(f"bm25_b must be between 0 and 1, got {settings.bm25_b!r}")
    if not 0 <= settings.fusion_weight <= 1:
        raise ValueError(f"fusion_weight must be between 0 and 1, got {settings.fusion_weight!r}")
    if isinstance(settings.ann_threshold, bool) or not isinstance(settings.ann_threshold, int):
        raise ValueError(f"ann_threshold must be an integer (0 disables), got {settings.ann_threshold!r}")


# ------------------------------------------------------------------------------------------------------


# Never written out by `Settings.to_public_dict`: they are read from the environment again.
SECRET_FIELDS = frozenset({"es_api_key", "es_password", "llm_api_key"})


def default_data_dir() -> Path:
    """Where the embedded store lives: ``$XDG_CACHE_HOME/qwen3-rag`` (``~/.cache/qwen3-rag``)."""
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "qwen3-rag"


def accelerator_available() -> bool:
    """Whether torch sees a CUDA or MPS device (decides the CPU or GPU defaults)."""
    import torch

    return torch.cuda.is_available() or torch.backends.mps.is_available()


@dataclass
class Settings:
    """Everything that defines a pipeline. Build it with `Settings.from_env` rather than directly,
    so that environment variables and device-dependent defaults apply.

    Attributes:
        backend: ``"memory"`` (embedded, persisted under ``data_dir``) or ``"elasticsearch"``.
        framework: Which framework composes the pipeline: ``"haystack"`` or ``"llamaindex"``.
        data_dir: Directory of the embedded store.
        es_url, es_api_key, es_username, es_password, es_ca_certs, es_verify_certs: Elasticsearch
            connection; TLS certificates are verified unless ``es_verify_certs`` is false.
        index_name: Elasticsearch index (and embedded store file) name.
        embedding_model: sentence-transformers model id or directory for dense retrieval.
        reranker_model: Qwen3-Reranker id or directory.
        device: ``cpu``, ``cuda``, ``mps``; ``None`` picks the best available.
        top_k: Candidates retrieved (per retriever, and after fusion) and sent to the reranker.
        top_n: Passages kept after reranking and given to the LLM.
        chunk_size, chunk_overlap: Chunk length and overlap in tokens at indexing time.
        fusion: ``"client"`` RRF in Python, ``"elasticsearch"`` the server's ``retriever.rrf``,
            ``"auto"`` the server's when its license allows it, else the client's.
        rrf_rank_constant: RRF's k (60, as in Elasticsearch and the RRF paper).
        instruction: Reranker task instruction; ``None`` uses the model card's default.
        llm: ``"none"`` (the answer is the ranked passages), ``"openai"`` (any OpenAI-compatible
            endpoint: OpenAI, vLLM, Ollama), ``"hf"`` (a local transformers causal LM).
        llm_model, llm_base_url, llm_api_key: The LLM's model id and endpoint.
        max_new_tokens: Longest answer the LLM may write.
        language: BM25 text analysis (stemming, stop words) of both backends: an Elasticsearch
            language analyzer name (``english``, ``german``, ...) or ``none``.
        bm25_k1, bm25_b: BM25's term-frequency saturation and length normalisation (Lucene's
            scorer in both backends; 0.9/0.4 as Anserini and bm25s use).
        ann_threshold: Passages from which the embedded store adds an HNSW index for unfiltered
            dense search (exact search below it; 0 never).
        fusion_method: ``"rrf"`` (reciprocal rank fusion) or ``"convex"`` (min-max normalised
            scores, ``fusion_weight`` × dense + (1 - ``fusion_weight``) × BM25; client-side).
        fusion_weight: The dense weight of ``"convex"`` fusion.
    """

    backend: Backend = "memory"
    framework: Framework = "haystack"
    data_dir: Path = field(default_factory=default_data_dir)
    es_url: str = DEFAULT_ES_URL
    es_api_key: str | None = None
    es_username: str | None = None
    es_password: str | None = None
    es_ca_certs: str | None = None
    es_verify_certs: bool = True
    index_name: str = DEFAULT_INDEX
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    reranker_model: str = DEFAULT_MODEL
    device: str | None = None
    top_k: int = CPU_DEFAULTS["top_k"]
    top_n: int = 5
    chunk_size: int = CPU_DEFAULTS["chunk_size"]
    chunk_overlap: int = 32
    fusion: Fusion = "auto"
    rrf_rank_constant: int = 60
    instruction: str | None = None
    llm: LlmKind = "none"
    llm_model: str | None = None
    llm_base_url: str | None = None
    llm_api_key: str | None = None
    max_new_tokens: int = 256
    # retrieval tuning (issue 11)
    language: str = "english"
    bm25_k1: float = 0.9
    bm25_b: float = 0.4
    ann_threshold: int = 0
    fusion_method: FusionMethod = "rrf"
    fusion_weight: float = 0.5

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).expanduser()
        for name, kind in (
            ("backend", Backend),
            ("framework", Framework),
            ("llm", LlmKind),
            ("fusion", Fusion),
        ):
            _check_choice(name, getattr(self, name), get_args(kind))
        for name in ("top_k", "top_n", "chunk_size", "rrf_rank_constant", "max_new_tokens"):
            _check_positive(name, getattr(self, name))
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise ValueError(
                f"chunk_overlap must be >= 0 and smaller than chunk_size ({self.chunk_size}), "
                f"got {self.chunk_overlap}"
            )
        if not self.index_name or self.index_name != self.index_name.lower():
            raise ValueError(f"index_name must be a non-empty lower-case name, got {self.index_name!r}")
        if self.llm != "none" and not self.llm_model:
            raise ValueError(f"llm={self.llm!r} needs llm_model (flag --llm-model or QWEN3_RAG_LLM_MODEL)")
        _check_retrieval(self)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``overrides`` (flags; ``None`` values are ignored), then the environment
        (`ENVIRONMENT` names the variables), then defaults, which favour a GPU when one is present.

        Raises:
            ValueError: A value, from either source, is invalid; the message names it.
        """
        environ = os.environ if environ is None else environ
        known = {spec.name: spec for spec in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise TypeError(f"unknown setting(s) {unknown}; expected some of {sorted(known)}")
        values: dict[str, Any] = {}
        for name, variable in ENVIRONMENT.items():
            if environ.get(variable):
                values[name] = _convert(name, variable, environ[variable], known[name].type)
        values.update({name: value for name, value in overrides.items() if value is not None})
        device_defaults = GPU_DEFAULTS if _wants_accelerator(values.get("device")) else CPU_DEFAULTS
        for name, value in device_defaults.items():
            values.setdefault(name, value)
        return cls(**values)

    def to_public_dict(self) -> dict[str, Any]:
        """JSON-ready fields without the secrets, for serialised pipelines and reports;
        ``Settings.from_env(**settings.to_public_dict())`` rebuilds them, secrets from the environment."""
        public = {}
        for spec in dataclasses.fields(self):
            if spec.name not in SECRET_FIELDS:
                value = getattr(self, spec.name)
                public[spec.name] = str(value) if isinstance(value, Path) else value
        return public

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _wants_accelerator(device: str | None) -> bool:
    if device is not None:
        return not device.startswith("cpu")
    return accelerator_available()


def _convert(name: str, variable: str, raw: str, annotation: Any) -> Any:
    """Turn an environment string into the field's type, naming the variable on failure."""
    converters: dict[str, Callable[[str], Any]] = {"int": int, "float": float, "bool": _parse_bool}
    kind = str(annotation).split(" ")[0]
    try:
        return converters.get(kind, str)(raw)
    except ValueError as error:
        raise ValueError(f"{variable}={raw!r} is not a valid {kind} for {name}: {error}") from error


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true/false, 1/0, yes/no or on/off")


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _check_positive(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
