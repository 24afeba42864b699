"""`RerankerConfig`: a reranker's load settings as one value, normalised once.

Every layer (the core, the LlamaIndex and Haystack adapters, the pipelines, the server) speaks of
the same few settings. Spelled differently they would look like contradictions (``"cuda"`` next
to ``"cuda:0"``, ``"float32"`` next to ``torch.float32``), so they are resolved here, once, and
compared by value: two equal configs are the same reranker, and share one copy of the weights.

Example:
    >>> RerankerConfig(device="cuda", dtype="float32") == RerankerConfig(device="cuda:0", dtype=torch.float32)
    True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # torch is imported where a device or dtype is resolved: the CLI parses without it
    import torch

DEFAULT_MODEL = "Qwen/Qwen3-Reranker-0.6B"
DTYPE_NAMES = ("float32", "bfloat16", "float16")
LONG_DOCUMENTS = ("truncate", "window")
LongDocuments = Literal["truncate", "window"]


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

    Args:
        model: Hugging Face Hub id or local directory of a Qwen3-Reranker (0.6B, 4B or 8B).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or a ``torch.device``; ``None``
            picks CUDA, then MPS, then the CPU. Stored as a string with its index (``"cuda:0"``).
        dtype: ``"float32"``, ``"bfloat16"``, ``"float16"`` (with or without ``"torch."``), a
            ``torch.dtype``, or ``None``/``"auto"``: float32 on CPU (bfloat16 matmuls are far slower
            there), bfloat16 on CUDA where supported (else float16), float16 on MPS.
        max_length: Token limit of one prompt, as in the model card (8192).
        batch_tokens: Padded tokens per forward pass; bounds memory. ``None``: 1024 on CPU, where
            small batches waste the least padding; 32768 on accelerators, which need wide batches.
        long_documents: ``"truncate"`` cuts overlong documents like the model card; ``"window"``
            scores overlapping windows and keeps the best window's score.
        window_overlap: Tokens shared by consecutive windows.
        revision: Hub revision (branch, tag or commit) of the weights.
        instruction: Task instruction; ``None`` uses the model card's web-search default.
        cache_dir, local_files_only, token: Where the weights come from; passed to
            ``from_pretrained``, not part of equality (the same weights from another cache are
            the same weights), and the token is never shown in ``repr``.
    """

    model: str = DEFAULT_MODEL
    device: str | torch.device | None = None
    dtype: str | torch.dtype | None = None
    max_length: int = 8192
    batch_tokens: int | None = None
    long_documents: LongDocuments = "truncate"
    window_overlap: int = 128
    revision: str | None = None
    instruction: str | None = None
    cache_dir: str | None = field(default=None, compare=False)
    local_files_only: bool = field(default=False, compare=False)
    token: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"model must be a Hub id or a local directory; got {self.model!r}.")
        check_positive("max_length", self.max_length)
        if self.batch_tokens is not None:
            check_positive("batch_tokens", self.batch_tokens)
        if self.long_documents not in LONG_DOCUMENTS:
            raise ValueError(f"long_documents must be 'truncate' or 'window'; got {self.long_documents!r}.")
        if (
            isinstance(self.window_overlap, bool)
            or not isinstance(self.window_overlap, int)
            or self.window_overlap < 0
        ):
            raise ValueError(f"window_overlap must be a non-negative int; got {self.window_overlap!r}.")
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
        """Keyword arguments for ``from_pretrained``."""
        return {
            "revision": self.revision,
            "cache_dir": self.cache_dir,
            "local_files_only": self.local_files_only,
            "token": self.token,
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
    """A config from flat ``settings``, or ``base`` checked against the ones given explicitly."""
    return RerankerConfig(**settings) if base is None else base.merge(**settings)


def check_positive(name: str, value: object) -> None:
    """The one check of a positive int setting (``bool`` is not an int here)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int; got {value!r}.")


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
