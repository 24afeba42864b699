"""P(yes) for many token sequences, computing only what the score needs.

Three things make this much cheaper than the model card's ``model(**inputs).logits``:

* The answer is read at the last position only, and only "yes" minus "no" matters there, so the
  151,669-way vocabulary projection becomes one dot product with ``w_yes - w_no``:
  ``softmax([no, yes])[1] == sigmoid(yes - no)``.
* The shared head of every sequence (system prompt, instruction, query) runs once and its
  keys and values are reused by every sequence in every batch.
* Sequences are right-padded: with causal attention a real token never sees the padding after
  it, so no padding mask is needed and each row is read at its own last real token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .decoders import Decoder, PrefixCache

OutOfMemoryError = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


@dataclass
class YesNoScorer:
    """A decoder stack (without the vocabulary head) plus the yes-minus-no direction."""

    decoder: Decoder
    direction: torch.Tensor  # w_yes - w_no, float32, on the model's device
    bias: float  # b_yes - b_no (zero for Qwen3, kept for checkpoints with a head bias)
    pad_token_id: int

    @property
    def device(self) -> torch.device:
        return self.direction.device

    @torch.inference_mode()
    def prefix_cache(self, prefix_ids: Sequence[int]) -> PrefixCache | None:
        """Keys and values of the shared head, computed once for batch size 1."""
        if not prefix_ids:
            return None
        return self.decoder.prefix_cache(torch.tensor([list(prefix_ids)], device=self.device))

    def score(self, rows: Sequence[Sequence[int]], prefix: PrefixCache | None) -> list[float]:
        """P(yes) for each row (the tokens after the shared prefix), in order.

        On an out-of-memory error the batch is halved and retried, so a long input degrades to
        smaller batches instead of failing; no score is lost or reordered.
        """
        try:
            return self._score(rows, prefix)
        except OutOfMemoryError:
            if len(rows) == 1:
                raise
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            middle = len(rows) // 2
            return self.score(rows[:middle], prefix) + self.score(rows[middle:], prefix)

    @torch.inference_mode()
    def _score(self, rows: Sequence[Sequence[int]], prefix: PrefixCache | None) -> list[float]:
        width = max(len(row) for row in rows)
        input_ids = torch.tensor([[*row, *[self.pad_token_id] * (width - len(row))] for row in rows])
        lengths = torch.tensor([len(row) for row in rows])
        last = self.decoder.last_hidden(input_ids.to(self.device), lengths.to(self.device), prefix)
        return torch.sigmoid(last.float() @ self.direction + self.bias).tolist()
