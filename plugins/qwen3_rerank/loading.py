"""Loading a Qwen3-Reranker checkpoint from the Hugging Face Hub or a local directory.

Loading is where user mistakes surface (a wrong path, a model that is not a reranker, an old
transformers), so every failure here is turned into an error that says what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import transformers
from packaging.version import Version
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from .decoders import decoder_for
from .forward import YesNoScorer

MIN_TRANSFORMERS = Version("4.56")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` picks CUDA, then Apple MPS, then the CPU.

    A bare ``"cuda"`` becomes the current device's index (``"cuda:0"``), so that components that
    spell the same GPU differently still share one loaded model.
    """
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
    if resolved.type == "cuda" and resolved.index is None and torch.cuda.is_available():
        resolved = torch.device("cuda", torch.cuda.current_device())
    return resolved


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``None`` means float32 on CPU (bfloat16 matmuls are far slower there), bfloat16 on CUDA
    where supported (else float16), float16 on MPS."""
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}; got {dtype}.")
        return dtype
    if dtype is not None and dtype != "auto":
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)} or 'auto'; got {dtype!r}.")
        return DTYPES[dtype]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


@dataclass(frozen=True)
class ModelKey:
    """What makes two loaded models interchangeable: asking twice for one key loads once.

    Where the weights come from (cache directory, offline mode, token) is not part of it: the
    same revision of the same model is the same weights.
    """

    model: str
    device: str
    dtype: str
    revision: str | None = None


@dataclass
class LoadedModel:
    """A tokenizer and a scorer, ready to serve any number of `Qwen3Reranker` instances."""

    key: ModelKey
    tokenizer: PreTrainedTokenizerBase
    scorer: YesNoScorer


def _check_transformers() -> None:
    if Version(transformers.__version__) < MIN_TRANSFORMERS:
        raise RuntimeError(
            f"qwen3-rerank needs transformers>={MIN_TRANSFORMERS} for Qwen3 models; found "
            f"{transformers.__version__}. Upgrade with: pip install -U 'transformers>={MIN_TRANSFORMERS}'"
        )


def _single_token_id(tokenizer: PreTrainedTokenizerBase, word: str, model: str) -> int:
    ids = tokenizer.encode(word, add_special_tokens=False)
    if len(ids) != 1:
        raise ValueError(
            f"{model!r} is not a Qwen3 reranker: its tokenizer splits {word!r} into {len(ids)} tokens, "
            "but the yes/no scoring head needs one. Use a Qwen3-Reranker checkpoint such as "
            "'Qwen/Qwen3-Reranker-0.6B'."
        )
    return ids[0]


def load_model(key: ModelKey, hub_options: dict[str, Any]) -> LoadedModel:
    """Load tokenizer and weights for ``key``; ``hub_options`` are passed to ``from_pretrained``.

    Only the decoder stack is kept: the vocabulary head collapses into the yes-minus-no vector,
    which frees its memory when it is not tied to the embeddings (the 8B checkpoint).
    """
    _check_transformers()
    options = {"revision": key.revision, **hub_options}
    try:
        tokenizer = AutoTokenizer.from_pretrained(key.model, **options)
        model = AutoModelForCausalLM.from_pretrained(
            key.model, dtype=DTYPES[key.dtype], attn_implementation="sdpa", **options
        )
    except OSError as error:
        raise OSError(
            f"Could not load the reranker {key.model!r}: {error}\nPass a Hugging Face Hub id such as "
            "'Qwen/Qwen3-Reranker-0.6B' or a local directory saved with save_pretrained; for gated or "
            "private models set HF_TOKEN or pass token=..."
        ) from error
    except ValueError as error:
        raise ValueError(f"{key.model!r} cannot be loaded as a causal language model: {error}") from error
    yes, no = (_single_token_id(tokenizer, word, key.model) for word in ("yes", "no"))
    head = model.get_output_embeddings()
    direction = (head.weight[yes].float() - head.weight[no].float()).detach()
    bias = 0.0 if head.bias is None else float(head.bias[yes] - head.bias[no])
    decoder = decoder_for(model.to(key.device).eval())
    pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    scorer = YesNoScorer(decoder, direction.to(key.device), bias, pad_token_id)
    return LoadedModel(key, tokenizer, scorer)
