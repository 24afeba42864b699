import random

import pytest

from qwen3_rerank.batching import common_prefix_length, token_budget_batches


def test_batches_cover_every_index_once_and_respect_the_budget():
    lengths = [random.Random(seed).randint(1, 300) for seed in range(200)]
    batches = token_budget_batches(lengths, batch_tokens=1000)
    assert sorted(index for batch in batches for index in batch) == list(range(200))
    for batch in batches:
        assert len(batch) * max(lengths[i] for i in batch) <= 1000


def test_batches_are_length_sorted_longest_first():
    lengths = [5, 50, 10, 40, 20]
    flat = [index for batch in token_budget_batches(lengths, batch_tokens=60) for index in batch]
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)


def test_a_sequence_longer_than_the_budget_gets_a_batch_of_its_own():
    assert token_budget_batches([500, 10, 10], batch_tokens=100) == [[0], [1, 2]]


def test_no_sequences_no_batches():
    assert token_budget_batches([], batch_tokens=100) == []


def test_budget_must_be_positive():
    with pytest.raises(ValueError, match="batch_tokens"):
        token_budget_batches([1], batch_tokens=0)


@pytest.mark.parametrize(
    ("sequences", "expected"),
    [([[1, 2, 3], [1, 2, 4]], 2), ([[1, 2], [1, 2, 3]], 2), ([[7], [8]], 0), ([[1, 2, 3]], 3), ([], 0)],
)
def test_common_prefix_length(sequences, expected):
    assert common_prefix_length(sequences) == expected
