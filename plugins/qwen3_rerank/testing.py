"""Offline stand-ins for Qwen3-Reranker checkpoints, for tests and benchmarks.

Weights cannot always be downloaded (CI, air-gapped machines), but the code paths that load a
checkpoint from a directory should still run for real. These helpers build the genuine Qwen3
tokenizer from the Qwen BPE ranks that the ``dashscope`` wheel ships, and a ``Qwen3ForCausalLM``
of any shape with random weights, both saved with ``save_pretrained``.

Example:
    >>> from qwen3_rerank.testing import save_random_qwen3
    >>> path = save_random_qwen3("/tmp/tiny-qwen3", layers=2, hidden_size=64)
    >>> Qwen3Reranker(str(path), device="cpu").score("q", ["d"])
"""

from __future__ import annotations

import importlib.resources
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from transformers import Qwen2Tokenizer, Qwen3Config, Qwen3ForCausalLM
from transformers.convert_slow_tokenizer import TikTokenConverter
from transformers.tokenization_utils_base import AddedToken

from .extras import missing, with_install_hint

QWEN_BPE_RANKS = 151_643
# Qwen3's added tokens, ids 151643..151668 in order; the flag says whether it is a "special" token.
QWEN3_ADDED_TOKENS: tuple[tuple[str, bool], ...] = (
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True),
    ("<|box_start|>", True),
    ("<|box_end|>", True),
    ("<|quad_start|>", True),
    ("<|quad_end|>", True),
    ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|vision_pad|>", True),
    ("<|image_pad|>", True),
    ("<|video_pad|>", True),
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", True),
    ("<|fim_middle|>", True),
    ("<|fim_suffix|>", True),
    ("<|fim_pad|>", True),
    ("<|repo_name|>", True),
    ("<|file_sep|>", True),
    ("<tool_response>", False),
    ("</tool_response>", False),
    ("<think>", False),
    ("</think>", False),
)
QWEN3_VOCAB_SIZE = 151_669

# Qwen3-Reranker-0.6B's architecture (config.json on the hub), used by the benchmark.
RERANKER_0_6B_SHAPE = {
    "layers": 28,
    "hidden_size": 1024,
    "intermediate_size": 3072,
    "attention_heads": 16,
    "kv_heads": 8,
    "head_dim": 128,
}


def qwen_bpe_ranks_file() -> Path:
    """The Qwen BPE ranks file bundled in the ``dashscope`` wheel."""
    try:
        resources = importlib.resources.files("dashscope") / "resources" / "qwen.tiktoken"
    except ModuleNotFoundError as error:
        raise missing(error, "Building the Qwen3 tokenizer offline") from None
    return Path(str(resources))


def build_qwen3_tokenizer() -> Qwen2Tokenizer:
    """The real Qwen3 tokenizer (byte-level BPE, NFC, Qwen's split regex, 26 added tokens)."""
    try:  # transformers reads the ranks with it, and says so in its own words only
        import tiktoken  # noqa: F401
    except ModuleNotFoundError as error:
        raise missing(error, "Building the Qwen3 tokenizer offline") from None
    vocab, merges = TikTokenConverter().extract_vocab_merges_from_model(str(qwen_bpe_ranks_file()))
    if len(vocab) != QWEN_BPE_RANKS:
        raise RuntimeError(f"expected {QWEN_BPE_RANKS} Qwen BPE ranks, found {len(vocab)}")
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges, model_max_length=131_072)
    tokenizer.add_tokens([AddedToken(text, special=special) for text, special in QWEN3_ADDED_TOKENS])
    tokenizer.padding_side = "left"
    if tokenizer.convert_tokens_to_ids("</think>") != QWEN3_VOCAB_SIZE - 1:
        raise RuntimeError("the added tokens did not land on Qwen3's ids")
    return tokenizer


def save_qwen3_tokenizer(path: str | Path) -> Path:
    """Build the Qwen3 tokenizer and save it under ``path``; returns ``path``."""
    path = Path(path)
    tokenizer = build_qwen3_tokenizer()
    with _written_whole(path) as staging:
        tokenizer.save_pretrained(staging)
    return path


@contextmanager
def _written_whole(path: Path) -> Iterator[Path]:
    """A staging directory next to ``path`` that becomes ``path`` only once the block has
    written everything, so that a failure (a missing package, a full disk, Ctrl-C) never leaves a
    half-written model (weights without a tokenizer) for a later run to trip over. A previous
    model at ``path`` is replaced; a directory holding anything else is refused."""
    path = Path(path).expanduser()
    if path.is_dir() and any(path.iterdir()) and not (path / "config.json").is_file():
        raise FileExistsError(
            f"{str(path)!r} holds files that are not a saved model: choose another directory"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield staging
        if path.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.replace(path, retired / path.name)
            os.replace(staging, path)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def random_qwen3_config(
    *,
    layers: int = 2,
    hidden_size: int = 64,
    intermediate_size: int = 128,
    attention_heads: int = 4,
    kv_heads: int = 2,
    head_dim: int = 16,
    tie_word_embeddings: bool = True,
    initializer_range: float = 0.02,
) -> Qwen3Config:
    """A Qwen3 config with the real vocabulary and special token ids, at any size."""
    return Qwen3Config(
        vocab_size=QWEN3_VOCAB_SIZE,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=layers,
        num_attention_heads=attention_heads,
        num_key_value_heads=kv_heads,
        head_dim=head_dim,
        max_position_embeddings=40_960,
        rope_theta=1_000_000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=tie_word_embeddings,
        initializer_range=initializer_range,
        bos_token_id=151_643,
        eos_token_id=151_645,
        pad_token_id=151_643,
    )


def save_random_qwen3(
    path: str | Path,
    *,
    seed: int = 0,
    tokenizer_path: str | Path | None = None,
    **shape: int | float | bool,
) -> Path:
    """Save a randomly initialised ``Qwen3ForCausalLM`` and the Qwen3 tokenizer under ``path``.

    ``tokenizer_path`` reuses an already saved tokenizer (building one takes a few seconds).
    ``shape`` takes the keyword arguments of `random_qwen3_config`; for tiny test models pass
    ``initializer_range=0.2`` so that scores spread over (0, 1) instead of all sitting near 0.5.
    """
    path = Path(path)
    # The tokenizer first: it is what fails without the `offline` extra, before any weights exist.
    tokenizer = Qwen2Tokenizer.from_pretrained(tokenizer_path) if tokenizer_path else build_qwen3_tokenizer()
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(random_qwen3_config(**shape)).eval()
    with _written_whole(path) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    return path


def main(argv: list[str] | None = None) -> None:
    """``python -m qwen3_rerank.testing DIR [--layers N ...]``: save a random Qwen3 reranker to DIR."""
    import argparse

    parser = argparse.ArgumentParser(description="Save a random Qwen3 reranker for offline runs.")
    parser.add_argument("path", type=Path)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--intermediate-size", type=int, default=128)
    arguments = parser.parse_args(argv)
    try:
        save_random_qwen3(
            arguments.path,
            layers=arguments.layers,
            hidden_size=arguments.hidden_size,
            intermediate_size=arguments.intermediate_size,
            initializer_range=0.2,
        )
    except (RuntimeError, OSError, ImportError) as error:  # one line naming the fix, a non-zero exit
        parser.exit(1, f"error: {with_install_hint(error) if isinstance(error, ImportError) else error}\n")
    print(f"Saved a random Qwen3 reranker (meaningless scores) to {arguments.path}")


if __name__ == "__main__":
    main()
