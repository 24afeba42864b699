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
from .config import DEFAULT_MODEL, RerankerConfig, check_positive, configure, load_settings
from .decoders import PrefixCache
from .loading import LoadedModel, load_model
from .prompt import PromptEncoder
from .registry import ModelRegistry, shared_models
from .windows import split_into_windows

# Documents are tokenized and scheduled this many at a time, which bounds memory for
# arbitrarily long streams while leaving plenty of room to sort by length.
CHUNK_DOCUMENTS = 512
MIN_DOCUMENT_TOKENS = 8
"""The fewest document tokens a query (with the instruction) must leave room for in a prompt.

The prompt is truncated from the right, so a query that fills it cuts the document out and every
document gets the query's score alone. Such a request is refused, not answered with equal scores.
Eight tokens are a short sentence, the least that gives the model a passage to judge, and small
enough that a tiny ``max_length`` still works: at 96, the default instruction and "What is the
capital of France?" leave 17.
"""


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
        model: Hugging Face Hub id or local directory of a Qwen3-Reranker.
        config: The load settings as one value, e.g. another reranker's ``config``; settings
            passed alongside must agree with it.
        show_progress: Show a progress bar while scoring.
        registry: Where loaded weights are shared: rerankers whose configs have the same
            `RerankerConfig.key` (model, device, dtype, revision) load the weights once per process,
            and the registry's reference count frees them when the last one is closed.
        **settings: Any other `RerankerConfig` field by name (``device``, ``dtype``,
            ``max_length``, ``long_documents``, ``token``, ...), which declares, checks and
            resolves them (``HF_TOKEN`` is honoured when ``token`` is None).

    Raises:
        TypeError: A setting's name is not a `RerankerConfig` field.
        ValueError: A setting's value is invalid, or contradicts ``config``.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        config: RerankerConfig | None = None,
        show_progress: bool = False,
        registry: ModelRegistry = shared_models,
        **settings: Any,
    ) -> None:
        self.config = configure(config, model=model, **settings)
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
        """The model as configured: its Hub id or local directory."""
        return self.config.model

    @property
    def device(self) -> torch.device:
        """Where the weights are."""
        return torch.device(self.config.device)

    @property
    def loaded_model(self) -> LoadedModel:
        """The shared weights; two rerankers with the same key hold the same object."""
        if self._model is None:
            raise RuntimeError("This Qwen3Reranker was closed; create a new one to score again.")
        return self._model

    def score(self, query: str, documents: Iterable[str], instruction: str | None = None) -> list[float]:
        """P(yes) for each document, in input order. ``documents`` may be any iterable, including
        a generator of millions: they are processed in chunks, so memory stays bounded.

        Raises:
            InvalidInput: The query is blank, too long to leave the documents room (see
                `MIN_DOCUMENT_TOKENS`), or a text is not valid Unicode.
        """
        instruction = self._checked_request(query, instruction)
        scores, _ = self._score_items(self._items(documents), query, instruction, total=_length(documents))
        return scores

    def rerank(
        self,
        query: str,
        documents: Iterable[str],
        top_n: int | None = None,
        instruction: str | None = None,
    ) -> list[RerankResult]:
        """Documents sorted by descending score (ties keep input order), at most ``top_n``; bad
        input raises as in `score`."""
        instruction = self._checked_request(query, instruction)
        if top_n is not None:
            check_positive("top_n", top_n)
        documents = list(documents)
        scores, windows = self._scores_and_windows(query, documents, instruction)
        ranked = best_first(scores, top_n)
        return [RerankResult(index, scores[index], documents[index], windows[index]) for index in ranked]

    def _scores_and_windows(
        self, query: str, documents: list[str], instruction: str | None
    ) -> tuple[list[float], list[int]]:
        """Each document's score and the windows it was read in: the one step of `rerank` that a
        handle scoring elsewhere (the server's queue) replaces."""
        return self._score_items(self._items(documents), query, instruction, total=len(documents))

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
            InvalidInput: The query is empty or too long to leave the documents room (see
                `MIN_DOCUMENT_TOKENS`), or a text is not valid Unicode (a lone surrogate);
                ``location`` names the argument.
        """
        instruction = self._checked_request(query, instruction)
        if max_tokens_per_doc is not None:
            check_positive("max_tokens_per_doc", max_tokens_per_doc)
        texts = list(self._items(documents))
        if max_tokens_per_doc is not None:
            texts = [(index, self._encoder.truncate_text(text, max_tokens_per_doc)) for index, text in texts]
        items = self._expand(texts, query, instruction)
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

    def _checked_request(self, query: object, instruction: str | None) -> str | None:
        """The instruction in effect, once the query and instruction are known to be scoreable."""
        _check_text_argument(query, "query")
        if not query.strip():  # type: ignore[attr-defined]  # a str, checked above
            raise InvalidInput(("query",), f"query must be a non-empty string; got {query!r}.")
        if instruction is not None:
            _check_text_argument(instruction, "instruction")
        instruction = self.config.instruction if instruction is None else instruction
        room = self._encoder.document_room(query, instruction)  # type: ignore[arg-type]
        if room < MIN_DOCUMENT_TOKENS:
            used = self._encoder.body_budget - room
            raise InvalidInput(
                ("query",),
                f"query is too long: with the instruction it takes {used} of the {self._encoder.body_budget} "
                f"tokens a prompt has for them and a document (max_length={self.config.max_length}), "
                f"leaving {max(room, 0)} for the document, which needs at least {MIN_DOCUMENT_TOKENS}; "
                "shorten the query or raise max_length.",
            )
        return instruction

    def _items(self, documents: Iterable[str]) -> Iterator[tuple[int, str]]:
        for index, document in enumerate(documents):
            if not isinstance(document, str):
                raise TypeError(f"documents[{index}] must be a str; got {type(document).__name__}.")
            _check_text(document, ("documents", index))
            yield index, document

    def _score_items(
        self, items: Iterator[tuple[int, str]], query: str, instruction: str | None, total: int | None
    ) -> tuple[list[float], list[int]]:
        """Scores and window counts per input document, chunk by chunk (``total`` sizes the
        progress bar when the input's length is known)."""
        scores: list[float] = []
        windows: list[int] = []
        with tqdm(desc="Reranking", unit="doc", total=total, disable=not self.show_progress) as progress:
            while chunk := list(itertools.islice(items, CHUNK_DOCUMENTS)):
                expanded = self._expand(chunk, query, instruction)
                chunk_scores = self._score_chunk(expanded, instruction)
                scores.extend([float("-inf")] * len(chunk))
                windows.extend([0] * len(chunk))
                for item, score in zip(expanded, chunk_scores, strict=True):
                    scores[item.owner] = max(scores[item.owner], score)
                    windows[item.owner] += 1
                progress.update(len(chunk))
        return scores, windows

    def _expand(self, chunk: Sequence[tuple[int, str]], query: str, instruction: str | None) -> list[_Item]:
        if self.config.long_documents == "truncate":
            return [_Item(query, document, index) for index, document in chunk]
        overlap = self.config.window_overlap
        return [
            _Item(query, window, index)
            for index, document in chunk
            for window in split_into_windows(self._encoder, query, document, instruction, overlap)
        ]

    def _score_chunk(self, items: Sequence[_Item], instruction: str | None) -> list[float]:
        return self._score_encoded(
            self._encoder.encode([(item.query, item.text) for item in items], instruction)
        )

    def _score_encoded(self, encoded: Sequence[Sequence[int]]) -> list[float]:
        """P(yes) per encoded prompt. Identical prompts are scored once and share that score, so
        ties stay exact ties (and keep input order in `best_first`) whatever their batch or padding;
        the model call runs on the loaded model's scoring thread, so the same input gets the same
        bits whichever thread calls."""
        unique: dict[tuple[int, ...], int] = {}
        positions = [unique.setdefault(tuple(ids), len(unique)) for ids in encoded]
        scores = self.loaded_model.scoring.run(self._score_on_scoring_thread, list(unique))
        return [scores[position] for position in positions]

    def _score_on_scoring_thread(self, encoded: Sequence[Sequence[int]]) -> list[float]:
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
        for batch in token_budget_batches([len(row) for row in rows], self.config.batch_tokens):  # type: ignore[arg-type]
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


def _check_text_argument(text: object, name: str) -> None:
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str; got {type(text).__name__}.")
    _check_text(text, (name,))


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


def open_for(holder: object, reranker: Qwen3Reranker | None, names: Iterable[str]) -> Qwen3Reranker:
    """The handle an adapter scores with: a `share` of ``reranker`` (or a new reranker) under the
    settings ``holder`` keeps as attributes ``names``, written back as resolved (device, dtype,
    batch size), so that the adapter's fields show the settings in use."""
    settings = load_settings(holder, names)
    handle = share(reranker, **settings)
    resolved = handle.config.to_dict()
    for name in settings:
        setattr(holder, name, resolved[name])
    return handle


def config_of(reranker: Qwen3Reranker | None) -> RerankerConfig | None:
    """The config of a ``reranker=`` handed to an adapter (``None`` stays ``None``)."""
    if reranker is None:
        return None
    if not isinstance(reranker, Qwen3Reranker):
        raise TypeError(f"reranker must be a qwen3_rerank.Qwen3Reranker; got {type(reranker).__name__}.")
    return reranker.config
