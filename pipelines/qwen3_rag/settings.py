"""Settings of the pipelines and the server: one pydantic-settings system, one name per knob.

Every knob is read, in order of precedence, from flags (keyword overrides), the environment,
a ``.env`` file in the working directory, then its default; the CLI, the evaluation and the HTTP
server therefore build the very same pipeline. Each field names its one environment variable,
with one prefix per concern:

* ``QWEN3_RERANK_*``: the reranker (`RerankerSettings`, which becomes a `RerankerConfig`);
* ``QWEN3_RAG_*``: retrieval and generation (`Settings`); ``QWEN3_RAG_DEVICE`` places every model;
* ``QWEN3_SERVER_*``: the HTTP server (`qwen3_rag.server.settings.ServerSettings`);
* the conventional ``ES_URL``, ``ES_API_KEY``, ..., ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``.

``docs/configuration.md`` holds the table of variables, generated from these models
(``python -m qwen3_rag.server.settings`` prints it; a test keeps the page in step).

Example:
    >>> settings = Settings.from_env(backend="elasticsearch", top_n=3)
    >>> settings.es_url
    'http://localhost:9200'
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, AliasChoices, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from qwen3_rerank import DEFAULT_MODEL, RerankerConfig

Backend = Literal["memory", "elasticsearch"]
Framework = Literal["haystack", "llamaindex"]
LlmKind = Literal["none", "openai", "hf"]
Fusion = Literal["auto", "client", "elasticsearch"]
DType = Literal["auto", "float32", "bfloat16", "float16"]
LongDocuments = Literal["truncate", "window"]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]


def _lower_case(name: str) -> str:
    if not name or name != name.lower():
        raise ValueError(f"must be a non-empty lower-case name, as Elasticsearch requires; got {name!r}")
    return name


LowerCaseName = Annotated[str, AfterValidator(_lower_case)]

DEFAULT_EMBEDDING_MODEL = "Qwen/Qwen3-Embedding-0.6B"
DEFAULT_INDEX = "qwen3-rag"
DEFAULT_ES_URL = "http://localhost:9200"

# Reranking costs about 0.9 GFLOP per token with the 0.6B model. On a CPU, 12 candidates of
# ~160 tokens (~200 with the prompt) are ~2.2 TFLOP, seconds on a laptop; 50 chunks of 400 tokens
# are ~18 TFLOP, a fraction of a second on a GPU. See docs/pipelines.md.
CPU_DEFAULTS = {"candidates": 12, "chunk_size": 160}
GPU_DEFAULTS = {"candidates": 50, "chunk_size": 400}

# Never written out by `to_public_dict` nor shown in `repr`: read from the environment again.
SECRET_FIELDS = frozenset({"es_api_key", "es_password", "llm_api_key"})

_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("qwen3_rag_environ", default=None)
S = TypeVar("S", bound="SettingsBase")


def env(variable: str, default: Any, description: str, *, also: tuple[str, ...] = (), **checks: Any) -> Any:
    """A field read from the environment variable ``variable`` (then the older names ``also``).

    This is the one way a setting is declared: its variable, default and description live
    together, and the documentation table is generated from them.
    """
    return Field(
        default,
        description=description,
        validation_alias=AliasChoices(variable, *also),
        repr=variable not in {"ES_API_KEY", "ES_PASSWORD", "OPENAI_API_KEY"},
        **checks,
    )


def variables(field: FieldInfo) -> list[str]:
    """The environment variables of a field, its main name first."""
    alias = field.validation_alias
    assert isinstance(alias, AliasChoices), "declare settings with env()"
    return [str(choice) for choice in alias.choices]


class SettingsBase(BaseSettings):
    """What every settings model shares: the sources, their order, and `from_env`."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        protected_namespaces=(),
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        environ = _ENVIRON.get()
        if environ is None:
            return init_settings, env_settings, dotenv_settings
        # An explicit mapping replaces the process environment and .env (tests, embedding apps).
        source = EnvSettingsSource(settings_cls, env_ignore_empty=True)
        source.env_vars = {name.lower(): value for name, value in environ.items()}
        return init_settings, source

    @classmethod
    def from_env(cls: type[S], environ: Mapping[str, str] | None = None, **overrides: Any) -> S:
        """Settings from ``overrides`` (flags, by field name; ``None`` means unset), then
        ``environ`` (default: the process environment and ``.env``), then the defaults.

        Raises:
            TypeError: An override names no setting.
            ValueError: A value is invalid; the message names the setting and its variable.
        """
        unknown = sorted(set(overrides) - set(cls.model_fields))
        if unknown:
            raise TypeError(f"unknown setting(s) {unknown}; expected some of {sorted(cls.model_fields)}")
        given = {name: value for name, value in overrides.items() if value is not None}
        with _environment(environ):
            try:
                return cls(**given)
            except ValidationError as error:
                raise ValueError(describe(error, cls)) from None

    def to_public_dict(self) -> dict[str, Any]:
        """JSON-ready fields without the secrets, for serialised pipelines and reports;
        ``from_env(**settings.to_public_dict())`` rebuilds them, secrets from the environment."""
        return self.model_dump(mode="json", exclude=set(SECRET_FIELDS))

    def replace(self: S, **changes: Any) -> S:
        """A copy with some fields changed, validated again."""
        return type(self).from_env({}, **(self.model_dump() | changes))

    @classmethod
    def table(cls) -> list[tuple[str, str, str, str]]:
        """(variable, setting, default, description) for every setting, as the docs list them."""
        rows = []
        for name, field in cls.model_fields.items():
            names = variables(field)
            also = f" (also `{'`, `'.join(names[1:])}`)" if len(names) > 1 else ""
            default = "" if field.default is None else f"`{field.default}`"
            rows.append((names[0], name, default, f"{field.description}{also}"))
        return rows


class RerankerSettings(SettingsBase):
    """How the reranker loads (``QWEN3_RERANK_*``) and the device of every model (``QWEN3_RAG_DEVICE``)."""

    reranker_model: str = env(
        "QWEN3_RERANK_MODEL", DEFAULT_MODEL, "Qwen3-Reranker Hub id or local directory."
    )
    device: str | None = env(
        "QWEN3_RAG_DEVICE", None, "`cpu`, `cuda`, `cuda:1`, `mps` for every model; unset picks the best."
    )
    dtype: DType = env(
        "QWEN3_RERANK_DTYPE", "auto", "`float32`, `bfloat16`, `float16`; `auto`: float32 on CPU."
    )
    max_length: PositiveInt = env(
        "QWEN3_RERANK_MAX_LENGTH", 8192, "Token limit of one prompt (query + passage)."
    )
    batch_tokens: PositiveInt | None = env(
        "QWEN3_RERANK_BATCH_TOKENS", None, "Padded tokens per forward pass; unset: 1024 on CPU, 32768 on GPU."
    )
    long_documents: LongDocuments = env(
        "QWEN3_RERANK_LONG_DOCUMENTS",
        "truncate",
        "`truncate` overlong passages, or score `window`s, keep the best.",
    )
    window_overlap: NonNegativeInt = env("QWEN3_RERANK_WINDOW_OVERLAP", 128, "Tokens shared by windows.")
    revision: str | None = env(
        "QWEN3_RERANK_REVISION", None, "Hub revision (branch, tag, commit) of the model."
    )
    instruction: str | None = env(
        "QWEN3_RERANK_INSTRUCTION", None, "Reranker task instruction; unset: the model card's web-search one."
    )

    def reranker_config(self) -> RerankerConfig:
        """The core's value for these settings: the reranker they describe, normalised."""
        return RerankerConfig(
            model=self.reranker_model,
            device=self.device,
            dtype=self.dtype,
            max_length=self.max_length,
            batch_tokens=self.batch_tokens,
            long_documents=self.long_documents,
            window_overlap=self.window_overlap,
            revision=self.revision,
            instruction=self.instruction,
        )


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
        "Passages retrieved and sent to the reranker; unset: 12 on CPU, 50 on GPU.",
        also=("QWEN3_RAG_TOP_K",),
    )
    top_n: PositiveInt = env("QWEN3_RAG_TOP_N", 5, "Passages kept after reranking and given to the LLM.")
    chunk_size: PositiveInt | None = env(
        "QWEN3_RAG_CHUNK_SIZE", None, "Chunk length in tokens at indexing; unset: 160 on CPU, 400 on GPU."
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
        defaults = GPU_DEFAULTS if _wants_accelerator(self.device) else CPU_DEFAULTS
        for name, value in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
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


def describe(error: ValidationError, model: type[BaseSettings]) -> str:
    """One line per bad value, naming the setting, its variable and what is expected."""
    lines = []
    for problem in error.errors():
        location = str(problem["loc"][0]) if problem["loc"] else ""
        field = next(
            (name for name, info in model.model_fields.items() if location in (name, *variables(info))), None
        )
        message = problem["msg"].removeprefix("Value error, ")
        if field is None:
            lines.append(message)
            continue
        got = "" if "got " in message else f"; got {problem.get('input')!r}"
        lines.append(f"{field} ({variables(model.model_fields[field])[0]}): {message}{got}")
    return "\n".join(lines)


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


@contextmanager
def _environment(environ: Mapping[str, str] | None) -> Iterator[None]:
    token = _ENVIRON.set(environ)
    try:
        yield
    finally:
        _ENVIRON.reset(token)


TABLE_START, TABLE_END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"


def with_table(page: str, *models: type[SettingsBase]) -> str:
    """``page`` with the text between its table markers replaced by the table of ``models``."""
    head, rest = page.split(TABLE_START, 1)
    return f"{head}{TABLE_START}\n{markdown_table(*models)}{TABLE_END}{rest.split(TABLE_END, 1)[1]}"


def markdown_table(*models: type[SettingsBase]) -> str:
    """The documentation's table of variables, one row per setting of ``models``."""
    rows = ["| Variable | Setting (`--set`) | Default | Meaning |", "| --- | --- | --- | --- |"]
    seen: set[str] = set()
    for model in models:
        for variable, name, default, description in model.table():
            if variable not in seen:
                seen.add(variable)
                rows.append(f"| `{variable}` | `{name}` | {default} | {description} |")
    return "\n".join(rows) + "\n"


ENVIRONMENT: dict[str, str] = {name: variables(info)[0] for name, info in Settings.model_fields.items()}
"""Field name -> its environment variable, for the pipeline's settings."""
