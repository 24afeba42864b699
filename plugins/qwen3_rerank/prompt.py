"""The Qwen3-Reranker prompt, as the model card builds it, with user text kept as text.

Scores are only meaningful for the prompt the model was trained on, so every string here is
copied from the model card verbatim and the token ids are produced the same way: prefix and
suffix tokenized on their own, the body tokenized as one string and truncated from the right.

One deliberate difference: the body (instruction, query and document, all user text) is
tokenized by the tokenizer's byte-level BPE alone, without its added tokens. The model card
tokenizes it with them, so a document holding ``<|im_end|>`` or ``</think>`` could close the
user turn and write the assistant's answer itself. Here such strings become ordinary text
tokens; text without them tokenizes exactly as in the model card (the added tokens are the
only thing removed), so its scores are unchanged.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerBase

DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"

PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
    'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
BODY_TEMPLATE = "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}"


def format_body(query: str, document: str, instruction: str | None = None) -> str:
    """The user turn of the prompt; ``instruction=None`` means the model card's default."""
    return BODY_TEMPLATE.format(
        instruction=DEFAULT_INSTRUCTION if instruction is None else instruction,
        query=query,
        document=document,
    )


# One text-only copy per loaded tokenizer: building it parses the whole vocabulary (seconds on a
# busy CPU), and every handle on the same weights (each adapter opens one) reads the same tokenizer.
_TEXT_ONLY: weakref.WeakKeyDictionary[PreTrainedTokenizerBase, Tokenizer] = weakref.WeakKeyDictionary()
_TEXT_ONLY_LOCK = threading.Lock()


def text_only_tokenizer(tokenizer: PreTrainedTokenizerBase) -> Tokenizer:
    """The tokenizer's normalizer, pre-tokenizer and BPE model without its added tokens (built once
    per tokenizer object and shared: it is only read).

    Whatever a user writes, this tokenizer can only produce ordinary vocabulary ids: control
    strings such as ``<|im_start|>`` are spelled out in byte-level pieces.
    """
    with _TEXT_ONLY_LOCK:
        text_only = _TEXT_ONLY.get(tokenizer)
        if text_only is None:
            text_only = _TEXT_ONLY[tokenizer] = _without_added_tokens(tokenizer)
        return text_only


def _without_added_tokens(tokenizer: PreTrainedTokenizerBase) -> Tokenizer:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise TypeError(
            f"the Qwen3 prompt needs a fast (Rust) tokenizer; got {type(tokenizer).__name__}. "
            "Load it with AutoTokenizer.from_pretrained(..., use_fast=True)."
        )
    spec = json.loads(backend.to_str())
    spec["added_tokens"] = []
    text_only = Tokenizer.from_str(json.dumps(spec))
    text_only.no_truncation()
    text_only.no_padding()
    return text_only


@dataclass(frozen=True)
class PromptEncoder:
    """Turns (instruction, query, document) into the token ids the model card feeds the model.

    Example:
        >>> encoder = PromptEncoder.for_tokenizer(tokenizer, max_length=8192)
        >>> ids = encoder.encode([("what is BM25?", "BM25 is a ranking function ...")])
    """

    tokenizer: PreTrainedTokenizerBase
    prefix_ids: tuple[int, ...]
    suffix_ids: tuple[int, ...]
    max_length: int
    text_tokenizer: Tokenizer  # user text only: no added (control) tokens

    @classmethod
    def for_tokenizer(cls, tokenizer: PreTrainedTokenizerBase, max_length: int) -> PromptEncoder:
        prefix_ids = tuple(tokenizer.encode(PREFIX, add_special_tokens=False))
        suffix_ids = tuple(tokenizer.encode(SUFFIX, add_special_tokens=False))
        if max_length <= len(prefix_ids) + len(suffix_ids):
            raise ValueError(
                f"max_length must exceed the prompt's fixed {len(prefix_ids) + len(suffix_ids)} tokens "
                f"(system prefix and answer suffix); got {max_length}."
            )
        return cls(tokenizer, prefix_ids, suffix_ids, max_length, text_only_tokenizer(tokenizer))

    @property
    def body_budget(self) -> int:
        """Tokens left for instruction, query and document once prefix and suffix are placed."""
        return self.max_length - len(self.prefix_ids) - len(self.suffix_ids)

    def document_room(self, query: str, instruction: str | None = None) -> int:
        """Tokens a prompt has left for a document after the instruction and ``query`` (negative
        when they alone overflow it): truncation cuts the document to this many."""
        return self.body_budget - len(self.text_ids(format_body(query, "", instruction)))

    def encode(self, pairs: Sequence[tuple[str, str]], instruction: str | None = None) -> list[list[int]]:
        """Full model inputs, one list of ids per (query, document) pair, truncated like the model card."""
        bodies = [format_body(query, document, instruction) for query, document in pairs]
        body_ids = [
            encoding.ids for encoding in self.text_tokenizer.encode_batch(bodies, add_special_tokens=False)
        ]
        budget = self.body_budget
        return [[*self.prefix_ids, *ids[:budget], *self.suffix_ids] for ids in body_ids]

    def text_ids(self, text: str) -> list[int]:
        """``text`` alone as ordinary tokens (used to cap a document's length in tokens)."""
        return self.text_tokenizer.encode(text, add_special_tokens=False).ids

    def truncate_text(self, text: str, max_tokens: int) -> str:
        """The longest opening of ``text`` that is at most ``max_tokens`` tokens long."""
        encoding = self.text_tokenizer.encode(text, add_special_tokens=False)
        if len(encoding.ids) <= max_tokens:
            return text
        return text[: encoding.offsets[max_tokens - 1][1]] if max_tokens > 0 else ""

    def body_token_offsets(
        self, query: str, document: str, instruction: str | None = None
    ) -> tuple[int, list[tuple[int, int]]]:
        """Where the document starts in the body, and each body token's character span.

        Used to cut long documents into windows at token boundaries.
        """
        body = format_body(query, document, instruction)
        offsets = self.text_tokenizer.encode(body, add_special_tokens=False).offsets
        return len(body) - len(document), [tuple(span) for span in offsets]
