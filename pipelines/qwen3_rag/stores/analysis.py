"""Text analysis for BM25, per script: the same steps as the Elasticsearch analyzer we create.

Chinese, Japanese and Korean runs become overlapping character bigrams, as Lucene's
``CJKAnalyzer`` and Elasticsearch's built-in ``cjk`` analyzer make them (``cjk_width``,
``lowercase``, ``cjk_bigram``: a lone Han, Kana or Hangul character stays a unigram), so a
question matches a passage that shares words with it without a dictionary. Every other word is
lower-cased, stripped of the language's stop words and stemmed with its Snowball stemmer
(PyStemmer), through ``bm25s``' word pattern and stop word lists. Mixed-script text needs no
choice: each run is analysed by its script. ``language`` names the stemmer for non-CJK words;
``"auto"`` (the default) is English for them, ``"none"`` keeps words unstemmed with no stop
words (Elasticsearch's ``standard`` analyzer).

Bigrams, not a word segmenter: on CMRC 2018 (BM25 alone, whole paragraphs, nDCG@10) bigrams
scored as well as jieba's dictionary words (0.9816 against 0.9820), need no dictionary, and are
what Elasticsearch can do without a plugin (figures in docs/evaluation.md).

Example:
    >>> Analyzer("auto").tokens(["Running dogs ran", "解释量子纠缠的 BERT模型"])
    [['run', 'dog', 'ran'], ['解释', '释量', '量子', '子纠', '纠缠', '缠的', 'bert', '模型']]
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Sequence
from functools import cached_property

# bm25s' (and scikit-learn's) word pattern: runs of two or more word characters.
_WORD = re.compile(r"(?u)\b\w\w+\b")

# The characters Lucene's StandardTokenizer types as IDEOGRAPHIC, HIRAGANA, KATAKANA or HANGUL,
# which CJKBigramFilter joins into bigrams: Han (with 々 〇 and the CJK radicals), Hiragana,
# Katakana (with ー), Hangul syllables and jamo.
_CJK_CHARACTERS = (
    "\u1100-\u11ff\u2e80-\u2fdf\u3005\u3007\u3021-\u3029\u3038-\u303b\u3041-\u309f"
    "\u30a1-\u30ff\u3131-\u318e\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f"
    "\uac00-\ud7af\ud7b0-\ud7ff\uf900-\ufaff\U00020000-\U0003ffff"
)
_CJK_RUN = re.compile(f"[{_CJK_CHARACTERS}]+")
# What ``cjk_width`` folds: full-width ASCII to ASCII, half-width Katakana to full width
# (NFKC maps exactly these ranges so, joining a half-width voiced mark to its Kana).
_WIDTH_VARIANTS = re.compile("[\uff01-\uff5e\uff61-\uff9f]+")

# What the BM25 terms of a text are made of; recorded with every index, so that an index built
# with another analysis is rebuilt (embedded) or refused (Elasticsearch), never searched with
# terms it does not hold. 1: words only (CJK runs were one "word"); 2: CJK bigrams + words.
ANALYSIS_VERSION = 2
# Non-CJK words under ``language="auto"``.
AUTO_WORDS_LANGUAGE = "english"

# ``auto``, and Elasticsearch's built-in language analyzers that PyStemmer (Snowball) also stems.
LANGUAGES = (
    "auto",
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


def words_language(language: str) -> str:
    """The language whose stemmer and stop words non-CJK words get (``auto``: English)."""
    return AUTO_WORDS_LANGUAGE if check_language(language) == "auto" else language


class Analyzer:
    """Turns texts into BM25 terms: CJK bigrams, and lower-cased, stop-filtered, stemmed words."""

    def __init__(self, language: str = "auto") -> None:
        self.language = words_language(language)

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

        Words take the same steps as ``bm25s.tokenize`` (its word pattern and stop word lists),
        with the stemmer memoised, so that one query is analysed in microseconds; text without
        CJK characters (all of it, in an English corpus) never leaves that path.
        """
        return [self._terms(text) for text in texts]

    def _terms(self, text: str) -> list[str]:
        if not text.isascii():
            text = _WIDTH_VARIANTS.sub(lambda match: unicodedata.normalize("NFKC", match[0]), text)
        text = text.lower()
        if text.isascii() or not _CJK_RUN.search(text):
            return self._words(text)
        terms: list[str] = []
        end = 0
        for run in _CJK_RUN.finditer(text):
            terms += self._words(text[end : run.start()])
            terms += bigrams(run[0])
            end = run.end()
        return terms + self._words(text[end:])

    def _words(self, text: str) -> list[str]:
        stem, stopwords = self._stem, self._stopwords
        return [stem(word) for word in _WORD.findall(text) if word not in stopwords]


def bigrams(run: str) -> list[str]:
    """Overlapping character bigrams of a run of CJK characters; a lone character is a unigram
    (``cjk_bigram`` with ``output_unigrams`` false)."""
    if len(run) < 2:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]
