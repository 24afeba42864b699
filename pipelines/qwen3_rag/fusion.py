"""Reciprocal rank fusion (Cormack, Clarke and Büttcher, SIGIR 2009), as Elasticsearch computes it.

score(d) = sum over the ranked lists that contain d of 1 / (rank_constant + rank(d)), ranks
starting at 1. Done in Python it makes hybrid search work on every Elasticsearch licence and on
the embedded store, and gives the same ordering as the server's ``retriever.rrf``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from .records import Passage


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[Passage]], *, rank_constant: int = 60, top_k: int | None = None
) -> list[Passage]:
    """Fuse ranked lists of passages (matched by id) into one, best first.

    Ties keep the order in which passages were first met, walking the lists rank by rank.

    Example:
        >>> fused = reciprocal_rank_fusion([bm25_passages, dense_passages], top_k=20)
    """
    if rank_constant < 1:
        raise ValueError(f"rank_constant must be a positive integer, got {rank_constant!r}")
    scores: dict[str, float] = {}
    first_seen: dict[str, Passage] = {}
    for ranking in rankings:
        for rank, passage in enumerate(ranking, start=1):
            scores[passage.id] = scores.get(passage.id, 0.0) + 1.0 / (rank_constant + rank)
            first_seen.setdefault(passage.id, passage)
    order = sorted(scores, key=lambda passage_id: -scores[passage_id])
    if top_k is not None:
        order = order[:top_k]
    return [replace(first_seen[pid], score=scores[pid], rank=rank) for rank, pid in enumerate(order, start=1)]


def convex_fusion(
    bm25: Sequence[Passage], dense: Sequence[Passage], *, dense_weight: float = 0.5, top_k: int | None = None
) -> list[Passage]:
    """Fuse by score: each list's scores min-max normalised to [0, 1], then
    ``dense_weight * dense + (1 - dense_weight) * bm25``; a passage missing from a list gets 0 there.

    Unlike RRF it uses how far apart the scores are, not only the order (Bruch, Gai and Ingber,
    "An Analysis of Fusion Functions for Hybrid Retrieval", TOIS 2023). Ties keep first-met order.

    Example:
        >>> fused = convex_fusion(bm25_passages, dense_passages, dense_weight=0.6, top_k=20)
    """
    if not 0 <= dense_weight <= 1:
        raise ValueError(f"dense_weight must be between 0 and 1, got {dense_weight!r}")
    scores: dict[str, float] = {}
    first_seen: dict[str, Passage] = {}
    for ranking, weight in ((bm25, 1.0 - dense_weight), (dense, dense_weight)):
        for passage, normalised in zip(ranking, _min_max([p.score for p in ranking]), strict=True):
            scores[passage.id] = scores.get(passage.id, 0.0) + weight * normalised
            first_seen.setdefault(passage.id, passage)
    order = sorted(scores, key=lambda passage_id: -scores[passage_id])
    if top_k is not None:
        order = order[:top_k]
    return [replace(first_seen[pid], score=scores[pid], rank=rank) for rank, pid in enumerate(order, start=1)]


def _min_max(scores: Sequence[float]) -> list[float]:
    """Scores rescaled to [0, 1]; a list of equal scores gives all 1."""
    if not scores:
        return []
    low, high = min(scores), max(scores)
    if high == low:
        return [1.0] * len(scores)
    return [(score - low) / (high - low) for score in scores]
