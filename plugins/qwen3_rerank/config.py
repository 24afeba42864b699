"""`RerankerConfig`: a reranker's load settings as one value, normalised once.

Every layer (the core, the LlamaIndex and Haystack adapters, the pipelines, the server) speaks of
the same few settings. Spelled differently they would look like contradictions (``"cuda"`` next
to ``"cuda:0"``, ``"float32"`` next to ``torch.float32``), so they are resolved here, once, and
compared by value: two equal configs are the same reranker, and share one copy of the weights.

Example:
    >>> RerankerConfig(device="cuda", dtype="float32") == RerankerConfig(device="cuda:0", dtype=torch.float32)
    True
"""

# ruff: noqa: RUF009 - `knob` returns a `dataclasses.field`, as a dataclass default should be
from __future__ import annotations

import dataclasses
import typing
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # torch is imported where a device or dtype is resolved: the CLI parses without it
    import torch

DEFAULT_MODEL = "Qwen/Qwen3-Reranker-0.6B"
DTYPE_NAMES = ("float32", "bfloat16", "float16")
DType = Literal["auto", "float32", "bfloat16", "float16"]
LongDocuments = Literal["truncate", "window"]


@dataclass(frozen=True)
class Knob:
    """One reranker setting as every layer spells it, read from its `RerankerConfig` field.

    The constructor, `RerankerSettings`, the adapters' fields and docs/configuration.md are all
    built from these, so a setting is declared once: in `RerankerConfig`, with `knob`.
    """

    name: str
    default: Any
    type: Any  # what a text source (environment, JSON, a framework's field) may hold
    description: str
    env: str | None = None  # its environment variable; None: not read from the environment
    setting: str = ""  # its name among the pipelines' settings (``reranker_model``); default: ``name``
    minimum: int | None = None  # for ints: the smallest value allowed
    pretrained: bool = False  # a ``from_pretrained`` option (Haystack's ``model_kwargs``)
    per_call: bool = False  # adapters pass it with each call: a shared ``reranker=`` never contradicts it
    secret: bool = False  # never shown, never serialised


def knob(default: Any, type: Any, description: str, *, compare: bool = True, **details: Any) -> Any:
    """A `RerankerConfig` field declaring one setting; ``details`` are `Knob`'s other fields."""
    metadata = {"type": type, "description": description, **details}
    return field(default=default, compare=compare, repr=not details.get("secret"), metadata=metadata)


@dataclass(frozen=True)
class ModelKey:
    """What makes two loaded models interchangeable: the registry loads each key once.

    Where the weights come from (cache directory, offline mode, token) is not part of it: the
    same revision of the same model is the same weights.
    """

    model: str
    device: str
    dtype: str
    revision: str | None = None


@dataclass(frozen=True)
class RerankerConfig:
    """Which weights a reranker loads and how it reads documents, resolved and comparable.

    Each field is the one declaration of a reranker setting (`knob`: its default, description
    and environment variable); `KNOBS` lists them for the layers that restate them. Resolved at
    construction: ``device`` becomes a string with its index (``"cuda:0"``), ``dtype`` a
    ``torch.dtype`` (``None``/``"auto"``: float32 on CPU, where bfloat16 matmuls are far slower,
    bfloat16 on CUDA where supported, else float16, float16 on MPS), ``batch_tokens`` a number.
    ``cache_dir``, ``local_files_only`` and ``token`` say where the weights come from: they go to
    ``from_pretrained``, are not part of equality (the same weights from another cache are the
    same weights), and the token is never shown in ``repr``.
    """

    model: str = knob(
        DEFAULT_MODEL,
        str,
        "Qwen3-Reranker Hub id or local directory (0.6B, 4B or 8B).",
        env="QWEN3_RERANK_MODEL",
        setting="reranker_model",
    )
    device: str | torch.device | None = knob(
        None,
        str | None,
        "`cpu`, `cuda`, `cuda:1`, `mps` for every model; unset picks CUDA, then MPS, then the CPU.",
        env="QWEN3_RAG_DEVICE",
    )
    dtype: str | torch.dtype | None = knob(
        None,
        DType | None,
        "`float32`, `bfloat16`, `float16`; unset or `auto`: float32 on CPU, bfloat16 on CUDA.",
        env="QWEN3_RERANK_DTYPE",
        pretrained=True,
    )
    max_length: int = knob(
        8192,
        int,
        "Token limit of one prompt (query + passage + template), as in the model card.",
        env="QWEN3_RERANK_MAX_LENGTH",
        minimum=1,
    )
    batch_tokens: int | None = knob(
        None,
        int | None,
        "Padded tokens per forward pass, which bounds memory; unset: 1024 on CPU, 32768 on GPU.",
        env="QWEN3_RERANK_BATCH_TOKENS",
        minimum=1,
    )
    long_documents: LongDocuments = knob(
        "truncate",
        LongDocuments,
        "`truncate` overlong passages like the model card, or score overlapping `window`s, keep the best.",
        env="QWEN3_RERANK_LONG_DOCUMENTS",
    )
    window_overlap: int = knob(
        128, int, "Tokens shared by consecutive windows.", env="QWEN3_RERANK_WINDOW_OVERLAP", minimum=0
    )
    revision: str | None = knob(
        None,
        str | None,
        "Hub revision (branch, tag, commit) of the model.",
        env="QWEN3_RERANK_REVISION",
        pretrained=True,
    )
    instruction: str | None = knob(
        None,
        str | None,
        "Reranker task instruction; unset: the model card's web-search one.",
        env="QWEN3_RERANK_INSTRUCTION",
        per_call=True,
    )
    cache_dir: str | None = knob(
        None, str | None, "Where downloaded weights are cached.", pretrained=True, compare=False
    )
    local_files_only: bool = knob(
        False, bool, "Never reach the Hub; read the cache only.", pretrained=True, compare=False
    )
    token: str | None = knob(
        None,
        str | None,
        "Hugging Face token for gated or private models (`HF_TOKEN` when unset).",
        pretrained=True,
        secret=True,
        compare=False,
    )

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"model must be a Hub id or a local directory; got {self.model!r}.")
        check_positive("max_length", self.max_length)
        if self.batch_tokens is not None:
            check_positive("batch_tokens", self.batch_tokens)
        if self.long_documents not in typing.get_args(LongDocuments):
            raise ValueError(f"long_documents must be 'truncate' or 'window'; got {self.long_documents!r}.")
        check_int("window_overlap", self.window_overlap, minimum=0)
        device = resolve_device(self.device)
        dtype = resolve_dtype(self.dtype, device)
        object.__setattr__(self, "device", str(device))
        object.__setattr__(self, "dtype", dtype)
        if self.batch_tokens is None:
            object.__setattr__(self, "batch_tokens", 1024 if device.type == "cpu" else 32768)

    @property
    def key(self) -> ModelKey:
        """The part of the config that decides the weights: the registry shares models by it."""
        return ModelKey(self.model, str(self.device), dtype_name(self.dtype), self.revision)

    @property
    def hub_options(self) -> dict[str, Any]:
        """Keyword arguments for ``from_pretrained`` besides the dtype: where the weights come from."""
        return {
            spec.name: getattr(self, spec.name) for spec in KNOBS if spec.pretrained and spec.name != "dtype"
        }

    def to_dict(self) -> dict[str, Any]:
        """The settings, JSON-ready (dtype by name) and without the token, for reports and
        serialised components."""
        values = {spec.name: getattr(self, spec.name) for spec in dataclasses.fields(self) if spec.repr}
        return values | {"dtype": dtype_name(self.dtype)}  # type: ignore[arg-type]

    def merge(self, **settings: Any) -> RerankerConfig:
        """This config with the ``settings`` a caller gave explicitly (those not at their default).

        This is how an adapter given both an existing reranker and flat settings checks them:
        settings that merely restate the config (``"cuda"`` for ``"cuda:0"``) are fine, others
        are a contradiction, refused rather than silently ignored.

        Raises:
            ValueError: A given setting differs from this config; the message names it.
        """
        fields = {spec.name: spec for spec in dataclasses.fields(self)}
        given = {name: value for name, value in settings.items() if value != fields[name].default}
        merged = dataclasses.replace(self, **given)
        conflicts = [
            f"{name}={value!r} (the reranker has {getattr(self, name)!r})"
            for name, value in given.items()
            if fields[name].compare and getattr(merged, name) != getattr(self, name)
        ]
        if conflicts:
            raise ValueError(
                f"reranker= already fixes the model settings, but these differ: {', '.join(conflicts)}. "
                "Configure them on the Qwen3Reranker, or leave them out."
            )
        return merged


def configure(base: RerankerConfig | None = None, **settings: Any) -> RerankerConfig:
    """A config from flat ``settings``, or ``base`` checked against the ones given explicitly.

    Raises:
        TypeError: A name is not a reranker setting.
    """
    unknown = sorted(set(settings) - {spec.name for spec in KNOBS})
    if unknown:
        raise TypeError(f"unknown reranker setting(s) {unknown}; expected some of {[k.name for k in KNOBS]}.")
    return RerankerConfig(**settings) if base is None else base.merge(**settings)


KNOBS: tuple[Knob, ...] = tuple(
    Knob(spec.name, spec.default, **{"setting": spec.name} | dict(spec.metadata))
    for spec in dataclasses.fields(RerankerConfig)
)
"""Every reranker setting, in declaration order."""


def knobs(*, exclude: Collection[str] = ()) -> list[Knob]:
    """The settings an adapter exposes: all but the secrets and those named in ``exclude``."""
    return [spec for spec in KNOBS if not spec.secret and spec.name not in exclude]


def load_settings(holder: object, names: Iterable[str]) -> dict[str, Any]:
    """The settings ``holder`` (an adapter) keeps as attributes of the same ``names``, for
    `qwen3_rerank.reranker.share`; per-call ones (the instruction) stay out."""
    per_call = {spec.name for spec in KNOBS if spec.per_call}
    return {name: getattr(holder, name) for name in names if name not in per_call}


def check_positive(name: str, value: object) -> None:
    """The one check of a positive int setting (``bool`` is not an int here)."""
    check_int(name, value, minimum=1)


def check_int(name: str, value: object, *, minimum: int) -> None:
    """``value`` is an int (not a ``bool``) of at least ``minimum`` (0 or 1); the error names ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be a {'positive' if minimum else 'non-negative'} int; got {value!r}.")


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` picks CUDA, then Apple MPS, then the CPU; a bare ``"cuda"`` gets its index
    (the current device, ``cuda:0`` without a GPU), so spellings of one GPU compare equal."""
    import torch

    if device is None:
        if torch.cuda.is_available():
            device = "cuda"
        elif torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device must be like 'cpu', 'cuda', 'cuda:1' or 'mps'; got {device!r}.") from error
    if resolved.type == "cuda" and resolved.index is None:
        index = torch.cuda.current_device() if torch.cuda.is_available() else 0
        resolved = torch.device("cuda", index)
    return resolved


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """A ``torch.dtype`` from a name (``"bfloat16"``, ``"torch.bfloat16"``), a dtype, or ``None``/
    ``"auto"`` for the device's best: float32 on CPU, bfloat16 on CUDA (float16 where unsupported),
    float16 on MPS."""
    import torch

    if isinstance(dtype, torch.dtype):
        if dtype_name(dtype) not in DTYPE_NAMES:
            raise ValueError(f"dtype must be one of {sorted(DTYPE_NAMES)}; got {dtype}.")
        return dtype
    if dtype is not None and dtype != "auto":
        name = str(dtype).removeprefix("torch.")
        if name not in DTYPE_NAMES:
            raise ValueError(f"dtype must be one of {sorted(DTYPE_NAMES)} or 'auto'; got {dtype!r}.")
        return getattr(torch, name)
    if device.type == "cuda":
        supported = not torch.cuda.is_available() or torch.cuda.is_bf16_supported()
        return torch.bfloat16 if supported else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32
