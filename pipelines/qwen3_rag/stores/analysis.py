"""Text analysis for BM25, per language: the same idea as an Elasticsearch language analyzer.

Text is lower-cased, split into word tokens, stripped of the language's stop words and stemmed
with the Snowball stemmer of that language (PyStemmer), through ``bm25s``' tokenizer. The names
are Elasticsearch's built-in language analyzers that Snowball also stems, so that one setting,
``language``, configures both backends alike; ``"none"`` keeps words unstemmed with no stop words
(Elasticsearch's ``standard`` analyzer).

Example:
    >>> Analyzer("english").tokens(["Running dogs ran"])
    [['run', 'dog', 'ran']]
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from functools import cached_property

# bm25s' (and scikit-learn's) word pattern: runs of two or more word characters.
_WORD = re.compile(r"(?u)\b\w\w+\b")

# Elasticsearch's built-in language analyzers that PyStemmer (Snowball) also has a stemmer for.
LANGUAGES = (
    "none",
    "arabic",
    "armenian",
    "basque",
    "catalan",
    "czech",
    "danish",
    "dutch",
    "english",
    "estonian",
    "finnish",
    "french",
    "german",
    "greek",
    "hindi",
    "hungarian",
    "indonesian",
    "irish",
    "italian",
    "lithuanian",
    "norwegian",
    "persian",
    "portuguese",
    "romanian",
    "russian",
    "serbian",
    "spanish",
    "swedish",
    "turkish",
)

# bm25s ships stop word lists for these (English: Lucene's, the same 33 words as Elasticsearch's).
STOPWORD_LANGUAGES = frozenset(
    {
        "english",
        "german",
        "dutch",
        "french",
        "spanish",
        "portuguese",
        "italian",
        "russian",
        "swedish",
        "norwegian",
        "turkish",
        "danish",
    }
)


def check_language(language: str) -> str:
    """``language`` when it is one of `LANGUAGES`; a ValueError naming the choices otherwise."""
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}; got {language!r}")
    return language


class Analyzer:
    """Turns texts into BM25 terms: lower case, word tokens, stop words removed, stemmed."""

    def __init__(self, language: str = "english") -> None:
        self.language = check_language(language)

    @cached_property
    def _stem(self) -> Callable[[str], str]:
        """The stemmer, memoised per word (a corpus repeats its words)."""
        if self.language == "none":
            return lambda word: word
        import Stemmer

        stem_word = Stemmer.Stemmer(self.language).stemWord
        return functools.lru_cache(maxsize=1 << 20)(stem_word)

    @cached_property
    def _stopwords(self) -> frozenset[str]:
        if self.language not in STOPWORD_LANGUAGES:
            return frozenset()
        from bm25s.tokenization import _infer_stopwords

        return frozenset(_infer_stopwords(self.language))

    def tokens(self, texts: Sequence[str]) -> list[list[str]]:
        """The terms of each text, in order (a text with none gives an empty list).

        The same steps as ``bm25s.tokenize`` (its word pattern and stop word lists), with the
        stemmer memoised, so that one query is analysed in microseconds.
        """
        stem, stopwords, words = self._stem, self._stopwords, _WORD.findall
        return [[stem(word) for word in words(text.lower()) if word not in stopwords] for text in texts]
