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
