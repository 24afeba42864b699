"""Loading a Qwen3-Reranker checkpoint from the Hugging Face Hub or a local directory.

Loading is where user mistakes surface (a wrong path, a model that is not a reranker, an old
transformers), so every failure here is turned into an error that says what to do.
"""

from __future__ import annotations

from dataclasses import dataclass

import transformers
from packaging.version import Version
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from .config import ModelKey, RerankerConfig
from .decoders import decoder_for
from .forward import YesNoScorer

MIN_TRANSFORMERS = Version("4.56")


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


def load_model(config: RerankerConfig) -> LoadedModel:
    """Load tokenizer and weights for ``config`` (its `RerankerConfig.hub_options` go to
    ``from_pretrained``).

    Only the decoder stack is kept: the vocabulary head collapses into the yes-minus-no vector,
    which frees its memory when it is not tied to the embeddings (the 8B checkpoint).
    """
    _check_transformers()
    key, options = config.key, config.hub_options
    try:
        tokenizer = AutoTokenizer.from_pretrained(key.model, **options)
        model = AutoModelForCausalLM.from_pretrained(
            key.model, dtype=config.dtype, attn_implementation="sdpa", **options
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
