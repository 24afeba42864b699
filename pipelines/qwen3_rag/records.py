"""The plain values that flow through a pipeline: source texts, chunks, passages, answers, reports.

They are framework-neutral on purpose: the HTTP server, the CLI and the evaluation read them
without knowing whether Haystack or LlamaIndex produced them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any


@dataclass(frozen=True)
class SourceText:
    """A document to index: its text, where it came from, and free metadata.

    ``source`` is the name shown and cited: for a file `qwen3-rerank index` read, its path
    relative to the folder it was given, under that folder's name (``samples_zh/tea.txt``),
    never the absolute path, which would tell every client where the files live; a URL or an id
    for documents given otherwise.
    """

    text: str
    source: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Chunk:
    """A piece of a source, the unit that is indexed, retrieved and reranked.

    ``id`` is derived from the source and the text, so indexing the same file twice writes the
    same ids (the store replaces them) instead of duplicating passages.
    """

    id: str
    text: str
    source: str
    position: int
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, text: str, source: str, position: int, meta: dict[str, Any] | None = None) -> Chunk:
        return cls(chunk_id(source, text), text, source, position, dict(meta or {}))


def chunk_id(source: str, text: str) -> str:
    """A stable id from content: the same source and text always give the same id."""
    return hashlib.sha256(f"{source}\x00{text}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk at one stage: its 1-based ``rank`` and that stage's ``score`` (BM25,
    cosine, RRF or the reranker's P(yes))."""

    id: str
    text: str
    source: str
    score: float
    rank: int
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Answer:
    """What `RagService.ask` returns.

    Attributes:
        question: The question asked.
        answer: The LLM's answer citing passages as [1], [2], ...; with ``llm="none"`` a labelled
            list of the ranked passages.
        passages: The reranked passages given to the LLM, best first; [n] in the answer is
            ``passages[n - 1]``.
        timings: Seconds per stage (``bm25``, ``dense``, ``fusion``, ``rerank``, ``generate``).
        stages: What each stage returned (``bm25``, ``dense``, ``fusion``, ``rerank``), to show
            what reranking changed.
    """

    question: str
    answer: str
    passages: list[Passage]
    timings: dict[str, float] = field(default_factory=dict)
    stages: dict[str, list[Passage]] = field(default_factory=dict)


@dataclass(frozen=True)
class Skipped:
    """A file that was not indexed, and why."""

    path: str
    reason: str


@dataclass
class IndexReport:
    """What indexing did: files read, chunks stored (each id once: the same source and text sent
    twice is one passage in the store), files skipped with their reasons, and passages removed
    because their file is gone from a re-indexed folder."""

    files: int = 0
    chunks: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0
    removed: int = 0


def display_source(source: str) -> str:
    """``source`` as a reader is shown it: as recorded, except an absolute path.

    Indices written before sources were recorded relative to their folder hold absolute paths
    (``/home/.../samples_zh/tea.txt``); those show as their last two parts (``samples_zh/tea.txt``),
    the name indexing the folder now records for a file at its top, so an old index answers
    without showing where the server keeps its files. Re-indexing the folder rewrites them.
    """
    for kind in (PurePosixPath, PureWindowsPath):
        path = kind(source)
        if path.is_absolute() and (kind is PurePosixPath or path.drive):
            named = [part for part in path.parts if part != path.anchor]
            return "/".join(named[-2:]) or source
    return source
