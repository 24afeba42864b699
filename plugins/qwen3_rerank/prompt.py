"""The Qwen3-Reranker prompt, exactly as the model card builds it.

Scores are only meaningful for the prompt the model was trained on, so every string here is
copied from the model card verbatim and the token ids are produced the same way: prefix and
suffix tokenized on their own, the body tokenized as one string and truncated from the right.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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

    @classmethod
    def for_tokenizer(cls, tokenizer: PreTrainedTokenizerBase, max_length: int) -> PromptEncoder:
        prefix_ids = tuple(tokenizer.encode(PREFIX, add_special_tokens=False))
        suffix_ids = tuple(tokenizer.encode(SUFFIX, add_special_tokens=False))
        if max_length <= len(prefix_ids) + len(suffix_ids):
            raise ValueError(
                f"max_length must exceed the prompt's fixed {len(prefix_ids) + len(suffix_ids)} tokens "
                f"(system prefix and answer suffix); got {max_length}."
            )
        return cls(tokenizer, prefix_ids, suffix_ids, max_length)

    @property
    def body_budget(self) -> int:
        """Tokens left for instruction, query and document once prefix and suffix are placed."""
        return self.max_length - len(self.prefix_ids) - len(self.suffix_ids)

    def encode(self, pairs: Sequence[tuple[str, str]], instruction: str | None = None) -> list[list[int]]:
        """Full model inputs, one list of ids per (query, document) pair, truncated like the model card."""
        bodies = [format_body(query, document, instruction) for query, document in pairs]
        body_ids = self.tokenizer(bodies, add_special_tokens=False)["input_ids"]
        budget = self.body_budget
        return [[*self.prefix_ids, *ids[:budget], *self.suffix_ids] for ids in body_ids]

    def body_token_offsets(
        self, query: str, document: str, instruction: str | None = None
    ) -> tuple[int, list[tuple[int, int]]]:
        """Where the document starts in the body, and each body token's character span.

        Used to cut long documents into windows at token boundaries.
        """
        body = format_body(query, document, instruction)
        offsets = self.tokenizer(body, add_special_tokens=False, return_offsets_mapping=True)[
            "offset_mapping"
        ]
        return len(body) - len(document), [tuple(span) for span in offsets]
