"""Reciprocal rank fusion gives the scores of its definition: sum of 1 / (k + rank)."""

from __future__ import annotations

import pytest

from qwen3_rag.fusion import reciprocal_rank_fusion
from qwen3_rag.records import Passage


def ranking(*ids: str) -> list[Passage]:
    return [Passage(pid, f"text {pid}", "src", 10.0 - rank, rank) for rank, pid in enumerate(ids, start=1)]


def test_scores_follow_the_definition() -> None:
    fused = reciprocal_rank_fusion([ranking("a", "b", "c"), ranking("c", "a")], rank_constant=60)
    scores = {p.id: p.score for p in fused}
    assert scores["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert scores["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert scores["b"] == pytest.approx(1 / 62)
    assert [p.id for p in fused] == ["a", "c", "b"]
    assert [p.rank for p in fused] == [1, 2, 3]


def test_a_passage_found_by_both_retrievers_beats_one_found_by_one() -> None:
    fused = reciprocal_rank_fusion([ranking("x", "both"), ranking("y", "both")])
    assert fused[0].id == "both"


def test_top_k_cuts_the_fused_list_and_keeps_texts() -> None:
    fused = reciprocal_rank_fusion([ranking("a", "b", "c", "d")], top_k=2)
    assert [(p.id, p.text) for p in fused] == [("a", "text a"), ("b", "text b")]


def test_ties_keep_the_order_of_first_appearance() -> None:
    fused = reciprocal_rank_fusion([ranking("a", "b"), ranking("b", "a")])
    assert [p.id for p in fused] == ["a", "b"]


def test_empty_rankings_fuse_to_nothing() -> None:
    assert reciprocal_rank_fusion([[], []]) == []


def test_rank_constant_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rank_constant"):
        reciprocal_rank_fusion([ranking("a")], rank_constant=0)


def test_convex_fusion_weighs_normalised_scores() -> None:
    from qwen3_rag.fusion import convex_fusion

    bm25 = [_passage("a", 10.0), _passage("b", 5.0), _passage("c", 0.0)]
    dense = [_passage("c", 0.9), _passage("b", 0.8), _passage("a", 0.5)]
    fused = convex_fusion(bm25, dense, dense_weight=0.5)
    # a: 0.5*1 + 0.5*0 = 0.5; b: 0.5*0.5 + 0.5*0.75 = 0.625; c: 0 + 0.5*1 = 0.5 (ties: first met)
    assert [p.id for p in fused] == ["b", "a", "c"]
    assert [p.rank for p in fused] == [1, 2, 3]
    assert fused[0].score == pytest.approx(0.625)


def test_convex_fusion_with_weight_one_is_the_dense_order() -> None:
    from qwen3_rag.fusion import convex_fusion

    bm25 = [_passage("a", 3.0), _passage("b", 1.0)]
    dense = [_passage("b", 0.7), _passage("c", 0.6), _passage("d", 0.5)]
    assert [p.id for p in convex_fusion(bm25, dense, dense_weight=1.0, top_k=2)] == ["b", "c"]


def test_convex_fusion_refuses_a_weight_outside_zero_one() -> None:
    from qwen3_rag.fusion import convex_fusion

    with pytest.raises(ValueError, match="dense_weight must be between 0 and 1"):
        convex_fusion([], [], dense_weight=1.5)


def _passage(pid: str, score: float) -> Passage:
    return Passage(pid, f"text {pid}", "src", score, 1)
