"""Loading a Qwen3-Reranker checkpoint from the Hugging Face Hub or a local directory.

Loading is where user mistakes surface (a wrong path, a model that is not a reranker, an old
transformers), so every failure here is turned into an error that says what to do.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import huggingface_hub
import transformers
from packaging.version import Version
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from .config import DEFAULT_MODEL, ModelKey, RerankerConfig
from .decoders import decoder_for
from .forward import YesNoScorer
from .scoring_thread import ScoringThread

MIN_TRANSFORMERS = Version("4.56")
OFFLINE_RECIPE = "the README's offline recipe (HF_HUB_OFFLINE=1 with a local directory)"
HUB_PROBE_TIMEOUT_S = 2.0


def is_local_path(model: str) -> bool:
    """Whether ``model`` names a directory rather than a Hub id (``owner/name``)."""
    return Path(model).expanduser().exists() or model.startswith(("/", ".", "~")) or model.count("/") > 1


@functools.cache
def hub_reachable() -> bool:
    """Whether the Hugging Face Hub answers within two seconds (``False`` with ``HF_HUB_OFFLINE``).

    Without this check, a machine without network spends a minute in download retries per model
    before the error; with it, loading goes straight to the local cache.
    """
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        return False
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True  # a proxy decides; a direct probe would say nothing
    endpoint = urlparse(huggingface_hub.constants.ENDPOINT)
    try:
        socket.create_connection((endpoint.hostname, endpoint.port or 443), HUB_PROBE_TIMEOUT_S).close()
    except OSError:
        return False
    return True


def offline_options(model: str, local_files_only: bool = False) -> dict[str, bool]:
    """``{"local_files_only": True}`` when a Hub id must come from the cache because the Hub is
    unreachable (loading then fails at once if it is not cached)."""
    if local_files_only or is_local_path(model) or hub_reachable():
        return {}
    return {"local_files_only": True}


class ModelLoadError(OSError):
    """A model that could not be loaded: which, why, and what to change, in the words of whoever
    chose the model. The library names its argument (``model=``); a command line re-words the
    fix with `advise` to name its flag and variable, which only it reads (``QWEN3_RERANK_MODEL``
    is read by the CLI, the pipelines and the server, never by `Qwen3Reranker` or the adapters)."""

    what: str
    model: str
    reason: str

    @classmethod
    def of(cls, what: str, model: str, reason: str, fix: str) -> ModelLoadError:
        failure = cls(f"cannot load the {what} {model!r}: {reason}. {fix}.")
        failure.what, failure.model, failure.reason = what, model, reason
        return failure

    def advise(self, fix: str) -> ModelLoadError:
        """The same failure told to another caller: ``fix`` is what they change."""
        return ModelLoadError.of(self.what, self.model, self.reason, fix).with_traceback(self.__traceback__)


LIBRARY_FIX = "Pass model= a Qwen3-Reranker Hub id or local directory"


def load_failure(what: str, model: str, error: Exception, fix: str) -> ModelLoadError:
    """A one-line error for a model that could not be loaded: why, and ``fix``, the caller's
    words for what to change (the original error stays chained, for ``--debug``)."""
    return ModelLoadError.of(what, model, _reason(model, error), fix)


def _reason(model: str, error: Exception) -> str:
    if is_local_path(model) and not Path(model).expanduser().is_dir():
        return f"there is no directory {model!r}"
    if not is_local_path(model) and not hub_reachable():
        return (
            f"{model!r} is not in the local cache and the Hugging Face Hub cannot be reached (or "
            f"HF_HUB_OFFLINE is set): run `hf download {model}` where there is a network, or pass a local "
            f"directory; see {OFFLINE_RECIPE}"
        )
    detail = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
    return f"{detail} (a Hub id such as {DEFAULT_MODEL!r} or a save_pretrained directory; HF_TOKEN if gated)"


# Any one of these in a directory is a saved tokenizer (fast, slow BPE, or SentencePiece).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")


def _check_tokenizer_files(model: str) -> None:
    """A local directory without a tokenizer would load an empty one, which then "splits 'yes'
    into 0 tokens"; say what is missing instead."""
    directory = Path(model).expanduser()
    if directory.is_dir() and not any((directory / name).is_file() for name in TOKENIZER_FILES):
        reason = (
            f"no tokenizer files in {model!r} (expected one of {', '.join(TOKENIZER_FILES)}); "
            "save the tokenizer there too (tokenizer.save_pretrained)"
        )
        raise ModelLoadError.of("reranker", model, reason, LIBRARY_FIX)


@dataclass
class LoadedModel:
    """A tokenizer and a scorer, ready to serve any number of `Qwen3Reranker` instances."""

    key: ModelKey
    tokenizer: PreTrainedTokenizerBase
    scorer: YesNoScorer
    # One model call at a time on these weights, whichever handle or thread calls: the memory
    # budget (`batch_tokens`) and each handle's shared-prefix cache assume it.
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)
    # Every forward pass on these weights runs on this one thread, so that the same input scores
    # bit-identically whichever thread asks (see `qwen3_rerank.scoring_thread`).
    scoring: ScoringThread = field(default_factory=ScoringThread, repr=False, compare=False)


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
    key = config.key
    options = config.hub_options | offline_options(key.model, config.local_files_only)
    _check_tokenizer_files(key.model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(key.model, **options)
        model = AutoModelForCausalLM.from_pretrained(
            key.model, dtype=config.dtype, attn_implementation="sdpa", **options
        )
    except OSError as error:
        raise load_failure("reranker", key.model, error, LIBRARY_FIX) from error
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
