"""Dense embeddings through sentence-transformers, for documents at indexing and queries at search.

Models such as Qwen3-Embedding or E5 embed queries and documents with different prompts;
``encode_query``/``encode_document`` apply the ones the model's configuration declares, so the
pipeline never hard-codes a prompt. Embeddings are L2-normalised, which makes cosine, dot
product and Elasticsearch's ``cosine`` similarity agree.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from qwen3_rerank.extras import missing

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

# The multilingual embedder a warning names: the Hub default, trained on 100+ languages.
MULTILINGUAL_MODEL = "Qwen/Qwen3-Embedding-0.6B"
# Passages whose language is detected for the warning (a sample: detection costs ~0.5 ms each).
LANGUAGE_SAMPLE = 300
# The least share of the sampled passages the model's declared languages must cover.
COVERED_SHARE = 0.5


class Embedder:
    """Embeds text with a sentence-transformers model, loaded on first use.

    Example:
        >>> embedder = Embedder("sentence-transformers/all-MiniLM-L6-v2")
        >>> embedder.dimension
        384
    """

    def __init__(self, model: str, *, device: str | None = None, batch_size: int = 32) -> None:
        if not model:
            raise ValueError("model must name a sentence-transformers model id or directory")
        self.model_name = model
        self.device = device
        self.batch_size = batch_size

    @cached_property
    def model(self) -> SentenceTransformer:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as error:
            advice = " (included in [haystack-pipelines] and [llamaindex-pipelines])"
            raise missing(error, "Embeddings", advice) from error
        from qwen3_rerank.loading import load_failure, offline_options

        try:
            return SentenceTransformer(
                self.model_name, device=self.device, **offline_options(self.model_name)
            )
        except OSError as error:
            fix = "Pass model= a sentence-transformers model id or directory"
            raise load_failure("embedding model", self.model_name, error, fix) from error

    @property
    def dimension(self) -> int:
        """The embedding size, read from the model (the Elasticsearch mapping's ``dims``)."""
        dimension = self.model.get_embedding_dimension()
        if not dimension:
            raise ValueError(f"cannot read the embedding dimension of {self.model_name!r}")
        return int(dimension)

    def embed_documents(self, texts: Sequence[str], *, show_progress: bool = False) -> list[list[float]]:
        """Embed passages in batches, with a progress bar when asked."""
        if not texts:
            return []
        vectors = self.model.encode_document(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=show_progress,
        )
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        """Embed one search query."""
        return self.model.encode_query([text], normalize_embeddings=True)[0].tolist()


def declared_languages(model: str) -> frozenset[str] | None:
    """The ISO 639-1 codes in the ``language`` metadata of the model card (``README.md`` of the
    model directory, or of the Hub cache; nothing is downloaded); None when the card is not at
    hand, declares no language, or says ``multilingual``."""
    card = _model_card(model)
    if card is None:
        return None
    from huggingface_hub import ModelCard

    declared = ModelCard(card).data.to_dict().get("language")
    codes = [declared] if isinstance(declared, str) else list(declared or [])
    codes = [str(code).lower().split("-")[0] for code in codes]
    if not codes or "multilingual" in codes:
        return None
    return frozenset(codes)


def _model_card(model: str) -> str | None:
    local = Path(model).expanduser() / "README.md"
    if local.is_file():
        return local.read_text(encoding="utf-8")
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model, "README.md")
    except (ImportError, ValueError):
        return None
    return Path(cached).read_text(encoding="utf-8") if isinstance(cached, str) else None


class TextSample:
    """An even random sample of the texts added, ``size`` at most (reservoir sampling: one pass,
    bounded memory), for detecting a corpus's languages while it is indexed."""

    def __init__(self, size: int = LANGUAGE_SAMPLE, seed: int = 0) -> None:
        self.size = size
        self.texts: list[str] = []
        self._seen = 0
        self._rng = random.Random(seed)

    def add(self, texts: Iterable[str]) -> None:
        for text in texts:
            self._seen += 1
            if len(self.texts) < self.size:
                self.texts.append(text)
            elif (slot := self._rng.randrange(self._seen)) < self.size:
                self.texts[slot] = text


def language_warning(model: str, texts: Sequence[str]) -> str | None:
    """One line when the embedding model's declared languages cover less than `COVERED_SHARE` of
    ``texts`` (a sample of the corpus), naming `MULTILINGUAL_MODEL`; None when they cover it, or
    the model declares none (unknown, or multilingual).

    An English-only embedder on Chinese text gives vectors that barely rank (on CMRC 2018, MiniLM's
    dense nDCG@10 was 0.22 against BM25's 0.98) and pulls hybrid retrieval down with it.
    """
    declared = declared_languages(model)
    if declared is None or not texts:
        return None
    from .stores.analysis import detect_code

    codes = Counter(code for code in map(detect_code, texts) if code)
    total = sum(codes.values())
    if not total:
        return None
    covered = sum(count for code, count in codes.items() if code in declared)
    if covered >= COVERED_SHARE * total:
        return None
    others = ", ".join(
        f"{code} {count / total:.0%}" for code, count in codes.most_common(3) if code not in declared
    )
    return (
        f"the embedding model {model} declares {', '.join(sorted(declared))} but most passages are in "
        f"other languages ({others}): dense and hybrid retrieval will be weak on them; "
        f"a multilingual model reads them (--embedding-model {MULTILINGUAL_MODEL})"
    )
