"""Grouping documents into forward passes.

Padding is wasted compute, and a fixed documents-per-batch count makes memory depend on how long
the documents happen to be. Sorting by length and filling each batch up to a token budget keeps
both padding and peak memory small whatever the input looks like.
"""

from __future__ import annotations

from collections.abc import Sequence

from .config import check_positive


def token_budget_batches(lengths: Sequence[int], batch_tokens: int) -> list[list[int]]:
    """Indices grouped so that ``len(batch) * longest_in_batch <= batch_tokens``.

    Longest sequences come first, so an out-of-memory error (if any) shows up at once rather than
    after minutes of work. A sequence longer than the budget still gets a batch of its own.

    >>> token_budget_batches([5, 1, 3, 4], batch_tokens=8)
    [[0], [3, 2], [1]]
    """
    check_positive("batch_tokens", batch_tokens)
    order = sorted(range(len(lengths)), key=lambda index: -lengths[index])
    batches: list[list[int]] = []
    for index in order:
        batch = batches[-1] if batches else None
        if batch is not None and (len(batch) + 1) * lengths[batch[0]] <= batch_tokens:
            batch.append(index)
        else:
            batches.append([index])
    return batches


def common_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """Length of the longest token prefix that every sequence shares.

    It is computed on the fully tokenized inputs on purpose: tokenizing the shared head and each
    document separately would change the tokens at the seam, and with them the scores.

    >>> common_prefix_length([[1, 2, 3], [1, 2, 4], [1, 2]])
    2
    """
    if not sequences:
        return 0
    first, shortest = sequences[0], min(len(sequence) for sequence in sequences)
    length = 0
    while length < shortest and all(sequence[length] == first[length] for sequence in sequences):
        length += 1
    return length
