"""`Qwen3Reranker`: the public surface of the scoring core."""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from .batching import common_prefix_length, token_budget_batches
from .config import DEFAULT_MODEL, LongDocuments, RerankerConfig, check_positive, configure
from .decoders import PrefixCache
from .loading import LoadedModel, load_model
from .prompt import PromptEncoder
from .registry import ModelRegistry, shared_models
from .windows import split_into_windows

# Documents are tokenized and scheduled this many at a time, which bounds memory for
# arbitrarily long streams while leaving plenty of room to sort by length.
CHUNK_DOCUMENTS = 512


@dataclass(frozen=True)
class RerankResult:
    """One ranked document: its position in the input, P(yes), its text, and how many windows
    were scored for it (1 unless ``long_documents="window"`` split it)."""

    index: int
    score: float
    document: str
    windows: int = 1


class InvalidInput(ValueError):
    """A request's own text cannot be scored; ``location`` names the argument, e.g.
    ``("documents", 3)``, so a server can answer 4xx pointing at it."""

    def __init__(self, location: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.location = location


@dataclass(frozen=True)
class PreparedRequest:
    """One request, validated and tokenized on its own, ready to share a model call.

    ``inputs`` are complete prompts (token ids); ``owners[i]`` is the document that ``inputs[i]``
    belongs to (several with ``long_documents="window"``). Made by `Qwen3Reranker.prepare`.
    """

    inputs: tuple[tuple[int, ...], ...]
    owners: tuple[int, ...]
    documents: int

    @property
    def tokens(self) -> int:
        """Tokens the model will read for this request: the unit of work a server budgets."""
        return sum(len(ids) for ids in self.inputs)


@dataclass(frozen=True)
class _Item:
    """One model input: a (query, text) pair and the input document it belongs to."""

    query: str
    text: str
    owner: int


class Qwen3Reranker:
    """Scores documents against a query with a Qwen3-Reranker, exactly as the model card does.

    Example:
        >>> reranker = Qwen3Reranker("Qwen/Qwen3-Reranker-0.6B")
        >>> reranker.rerank("What is BM25?", ["BM25 is a ranking function.", "Paris is in France."])
        [RerankResult(index=0, score=0.98, ...), RerankResult(index=1, score=0.01, ...)]

    Args:
        model, device, dtype, max_length, instruction, batch_tokens, long_documents,
        window_overlap, revision, cache_dir, local_files_only, token: The load settings; see
            `RerankerConfig`, which resolves them (``HF_TOKEN`` is honoured when ``token`` is None).
        config: The same settings as one value, e.g. another reranker's ``config``; settings
            passed alongside must agree with it.
        show_progress: Show a progress bar while scoring.
        registry: Where loaded weights are shared: rerankers whose configs have the same
            `RerankerConfig.key` (model, device, dtype, revision) load the weights once per process,
            and the registry's reference count frees them when the last one is closed.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        max_length: int = 8192,
        instruction: str | None = None,
        batch_tokens: int | None = None,
        long_documents: LongDocuments = "truncate",
        window_overlap: int = 128,
        revision: str | None = None,
        cache_dir: str | None = None,
        local_files_only: bool = False,
        token: str | None = None,
        config: RerankerConfig | None = None,
        show_progress: bool = False,
        registry: ModelRegistry = shared_models,
    ) -> None:
        settings = {
            "model": model,
            "device": device,
            "dtype": dtype,
            "max_length": max_length,
            "instruction": instruction,
            "batch_tokens": batch_tokens,
            "long_documents": long_documents,
            "window_overlap": window_overlap,
            "revision": revision,
            "cache_dir": cache_dir,
            "local_files_only": local_files_only,
            "token": token,
        }
        self.config = configure(config, **settings)
        self.registry = registry
        self.show_progress = show_progress
        key = self.config.key
        self._model: LoadedModel | None = registry.acquire(key, lambda: load_model(self.config))
        # The registry's reference count is the one owner record: a reranker dropped without
        # `close` still gives its use back when it is garbage-collected.
        self._release = weakref.finalize(self, registry.release, key)
        self._encoder = PromptEncoder.for_tokenizer(self._model.tokenizer, self.config.max_length)
        self._prefix: tuple[tuple[int, ...], PrefixCache | None] = ((), None)

    @property
    def model_id(self) -> str:
        return self.config.model

    @property
    def device(self) -> torch.device:
        return torch.device(self.config.device)

    @property
    def dtype(self) -> torch.dtype:
        return self.config.dtype  # type: ignore[return-value]  # resolved by RerankerConfig

    @property
    def max_length(self) -> int:
        return self.config.max_length

    @property
    def instruction(self) -> str | None:
        return self.config.instruction

    @property
    def batch_tokens(self) -> int:
        return self.config.batch_tokens  # type: ignore[return-value]  # resolved by RerankerConfig

    @property
    def long_documents(self) -> LongDocuments:
        return self.config.long_documents

    @property
    def window_overlap(self) -> int:
        return self.config.window_overlap

    @property
    def loaded_model(self) -> LoadedModel:
        """The shared weights; two rerankers with the same key hold the same object."""
        if self._model is None:
            raise RuntimeError("This Qwen3Reranker was closed; create a new one to score again.")
        return self._model

    def score(self, query: str, documents: Iterable[str], instruction: str | None = None) -> list[float]:
        """P(yes) for each document, in input order. ``documents`` may be any iterable, including
        a generator of millions: they are processed in chunks, so memory stays bounded."""
        _check_query(query)
        items = self._items((query, document) for document in documents)
        scores, _ = self._score_items(items, instruction, total=_length(documents))
        return scores

    def score_pairs(self, pairs: Iterable[tuple[str, str]], instruction: str | None = None) -> list[float]:
        """P(yes) for each ``(query, document)`` pair, in input order.

        Pairs of different queries are batched together, which is what a server coalescing many
        small requests needs; the instruction and system prompt are still computed once.
        """

        def checked(pairs: Iterable[tuple[str, str]]) -> Iterator[tuple[str, str]]:
            for position, pair in enumerate(pairs):
                if not (isinstance(pair, tuple | list) and len(pair) == 2):
                    raise TypeError(f"pairs[{position}] must be a (query, document) pair; got {pair!r}.")
                _check_query(pair[0], name=f"pairs[{position}][0]")
                yield pair[0], pair[1]

        scores, _ = self._score_items(self._items(checked(pairs)), instruction, total=_length(pairs))
        return scores

    def rerank(
        self,
        query: str,
        documents: Iterable[str],
        top_n: int | None = None,
        instruction: str | None = None,
    ) -> list[RerankResult]:
        """Documents sorted by descending score (ties keep input order), at most ``top_n``."""
        _check_query(query)
        if top_n is not None:
            check_positive("top_n", top_n)
        documents = list(documents)
        items = self._items((query, document) for document in documents)
        scores, windows = self._score_items(items, instruction, total=len(documents))
        ranked = best_first(scores, top_n)
        return [RerankResult(index, scores[index], documents[index], windows[index]) for index in ranked]

    # --- Requests prepared alone, scored together (servers) ----------------------------------

    def prepare(
        self,
        query: str,
        documents: Sequence[str],
        instruction: str | None = None,
        *,
        max_tokens_per_doc: int | None = None,
    ) -> PreparedRequest:
        """Validate and tokenize one request by itself, so that its errors stay its own.

        A server calls this per request before requests meet in a batch, then scores many
        prepared requests in one `score_prepared` call. ``max_tokens_per_doc`` cuts each document
        to that many tokens first (as Cohere's parameter of that name does); the whole prompt is
        then still truncated to ``max_length`` (or windowed) as in `score`.

        Raises:
            InvalidInput: The query is empty, or a text is not a str or not valid Unicode
                (a lone surrogate); ``location`` names the argument.
        """
        _check_query(query)
        if instruction is not None:
            _check_text(instruction, ("instruction",))
        if max_tokens_per_doc is not None:
            check_positive("max_tokens_per_doc", max_tokens_per_doc)
        texts = list(self._items((query, document) for document in documents))
        if max_tokens_per_doc is not None:
            texts = [(i, q, self._encoder.truncate_text(d, max_tokens_per_doc)) for i, q, d in texts]
        instruction = self.instruction if instruction is None else instruction
        items = self._expand(texts, instruction)
        encoded = self._encoder.encode([(item.query, item.text) for item in items], instruction)
        return PreparedRequest(
            inputs=tuple(tuple(ids) for ids in encoded),
            owners=tuple(item.owner for item in items),
            documents=len(texts),
        )

    def score_prepared(self, requests: Sequence[PreparedRequest]) -> list[list[float]]:
        """P(yes) per document of each request, in one model call over all of them.

        Scores equal scoring each request alone (``score``): batching and the shared prefix
        change no score. Safe to call from several threads; calls run one at a time.
        """
        encoded = [ids for request in requests for ids in request.inputs]
        flat = self._score_encoded(encoded) if encoded else []
        results: list[list[float]] = []
        start = 0
        for request in requests:
            scores = [float("-inf")] * request.documents
            for owner, score in zip(request.owners, flat[start : start + len(request.inputs)], strict=True):
                scores[owner] = max(scores[owner], score)
            results.append(scores)
            start += len(request.inputs)
        return results

    # -----------------------------------------------------------------------------------------

    def share(self, **settings: Any) -> Qwen3Reranker:
        """Another handle on these weights (``settings`` given must agree with this config).

        The adapters open their handles through this (via `share`), so a subclass that scores
        elsewhere, such as the server's queue, returns one of its own kind and they score there too.
        """
        return Qwen3Reranker(**settings, config=self.config, registry=self.registry)

    def close(self) -> None:
        """Release this reranker's hold on the shared weights (freed when no one else holds them)."""
        self._model = None
        self._prefix = ((), None)
        self._release()  # runs once, however often close is called

    def __enter__(self) -> Qwen3Reranker:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Qwen3Reranker({self.config!r})"

    def _items(self, pairs: Iterable[tuple[str, str]]) -> Iterator[tuple[int, str, str]]:
        for index, (query, document) in enumerate(pairs):
            if not isinstance(document, str):
                raise TypeError(f"documents[{index}] must be a str; got {type(document).__name__}.")
            _check_text(document, ("documents", index))
            yield index, query, document

    def _score_items(
        self, items: Iterator[tuple[int, str, str]], instruction: str | None, total: int | None
    ) -> tuple[list[float], list[int]]:
        """Scores and window counts per input document, chunk by chunk (``total`` sizes the
        progress bar when the input's length is known)."""
        instruction = self.instruction if instruction is None else instruction
        scores: list[float] = []
        windows: list[int] = []
        with tqdm(desc="Reranking", unit="doc", total=total, disable=not self.show_progress) as progress:
            while chunk := list(itertools.islice(items, CHUNK_DOCUMENTS)):
                expanded = self._expand(chunk, instruction)
                chunk_scores = self._score_chunk(expanded, instruction)
                scores.extend([float("-inf")] * len(chunk))
                windows.extend([0] * len(chunk))
                for item, score in zip(expanded, chunk_scores, strict=True):
                    scores[item.owner] = max(scores[item.owner], score)
                    windows[item.owner] += 1
                progress.update(len(chunk))
        return scores, windows

    def _expand(self, chunk: Sequence[tuple[int, str, str]], instruction: str | None) -> list[_Item]:
        if self.long_documents == "truncate":
            return [_Item(query, document, index) for index, query, document in chunk]
        return [
            _Item(query, window, index)
            for index, query, document in chunk
            for window in split_into_windows(self._encoder, query, document, instruction, self.window_overlap)
        ]

    def _score_chunk(self, items: Sequence[_Item], instruction: str | None) -> list[float]:
        return self._score_encoded(
            self._encoder.encode([(item.query, item.text) for item in items], instruction)
        )

    def _score_encoded(self, encoded: Sequence[Sequence[int]]) -> list[float]:
        with self.loaded_model.lock:  # shared by every handle on these weights
            return self._score_encoded_locked(encoded)

    def _score_encoded_locked(self, encoded: Sequence[Sequence[int]]) -> list[float]:
        # Every sequence keeps at least its last token out of the shared prefix: that is where
        # the answer is read.
        shared = min(common_prefix_length(encoded), min(len(ids) for ids in encoded) - 1)
        prefix = self._cached_prefix(encoded[0][:shared])
        rows = [ids[shared:] for ids in encoded]
        scores = [0.0] * len(rows)
        scorer = self.loaded_model.scorer
        for batch in token_budget_batches([len(row) for row in rows], self.batch_tokens):
            for index, score in zip(batch, scorer.score([rows[i] for i in batch], prefix), strict=True):
                scores[index] = score
        return scores

    def _cached_prefix(self, prefix_ids: Sequence[int]) -> PrefixCache | None:
        """The shared head's keys and values, recomputed only when the head changes."""
        prefix_ids = tuple(prefix_ids)
        cached_ids, cache = self._prefix  # one read: another thread may swap it meanwhile
        if cached_ids != prefix_ids:
            cache = self.loaded_model.scorer.prefix_cache(prefix_ids)
            self._prefix = (prefix_ids, cache)
        return cache


def best_first(scores: Sequence[float], top_n: int | None = None) -> list[int]:
    """Positions of ``scores`` from highest to lowest, ties in input order, at most ``top_n``.

    The one ranking rule: callers that get scores some other way (a server's queue) rank with it
    too, so their order and cut never drift from `Qwen3Reranker.rerank`'s.
    """
    return sorted(range(len(scores)), key=lambda index: -scores[index])[:top_n]


def _length(values: Iterable[object]) -> int | None:
    return len(values) if isinstance(values, Sized) else None


def _check_query(query: object, name: str = "query") -> None:
    if not isinstance(query, str):
        raise TypeError(f"{name} must be a str; got {type(query).__name__}.")
    if not query.strip():
        raise InvalidInput((name,), f"{name} must be a non-empty string; got {query!r}.")
    _check_text(query, (name,))


def _check_text(text: str, location: tuple[str | int, ...]) -> None:
    """Text the tokenizer can read: Python strings may hold lone surrogates, UTF-8 cannot."""
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        name = location[0] + "".join(f"[{part}]" for part in location[1:])
        raise InvalidInput(
            location,
            f"{name} is not valid Unicode text: lone surrogate {text[error.start]!r} at character "
            f"{error.start}; send UTF-8 text.",
        ) from None


def share(reranker: Qwen3Reranker | None, **settings: Any) -> Qwen3Reranker:
    """A new handle on ``reranker``'s weights (its config and registry; ``settings`` given must
    agree with them), or, without one, a reranker built from ``settings``. Each handle is closed by
    whoever opened it; the registry frees the weights when the last one is."""
    if reranker is None:
        return Qwen3Reranker(**settings)
    config_of(reranker)  # a clear TypeError for anything but a Qwen3Reranker
    return reranker.share(**settings)


def config_of(reranker: Qwen3Reranker | None) -> RerankerConfig | None:
    """The config of a ``reranker=`` handed to an adapter (``None`` stays ``None``)."""
    if reranker is None:
        return None
    if not isinstance(reranker, Qwen3Reranker):
        raise TypeError(f"reranker must be a qwen3_rerank.Qwen3Reranker; got {type(reranker).__name__}.")
    return reranker.config
