"""How the Elasticsearch indices we create analyse text: the embedded store's analysis
(``analysis.py``) with Elasticsearch's built-in tokenizers and filters only, no plugin needed.

Each analysis language gets one custom analyzer, ``qwen3_<language>``: the ``standard`` tokenizer
(UAX #29 words, marks kept in their word), ``cjk_width``, ``lowercase``, ``cjk_bigram``, then
that language's stop words (``stop`` with the embedded store's list, so both drop the same words)
and Snowball stemmer (``snowball``, the stemmers PyStemmer compiles). ``qwen3_thai`` cuts Thai with
the built-in ``thai`` tokenizer; where the ``analysis-icu`` plugin is present, Lao, Khmer and
Myanmar get ``icu_tokenizer`` (without it, Elasticsearch keeps a run of them as one token).

Under ``language=auto`` the index has one field per passage language, ``bm25.<language>``, as
Elasticsearch's multilingual guides do (a passage's text goes to the field of its detected
language, with that language's analyzer): each field has its own BM25 statistics, as each
language's part of the embedded index has. ``text`` holds the text for display and readers of
the layout, analysed as ``qwen3_none``. ``_meta.qwen3_rag`` records the analysis version, the
``language`` setting and the passages written per language.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from ..settings import DEFAULT_BM25_B, DEFAULT_BM25_K1, DEFAULT_LANGUAGE
from .analysis import (
    ANALYSIS_VERSION,
    NO_STEMMER,
    SNOWBALL_LANGUAGES,
    THAI,
    analysis_language,
    check_language,
    stopwords,
)

# The name of the BM25 similarity our indices declare (see `index_settings`).
BM25_SIMILARITY = "qwen3_bm25"
# The object field holding one text field per passage language (``auto`` indices).
LANGUAGE_FIELDS = "bm25"
# Scripts that ``standard`` keeps as one token per run and ``icu_tokenizer`` segments.
SOUTHEAST_ASIAN = frozenset({"lo", "km", "my"})
ICU_PLUGIN = "analysis-icu"
# Analyses our indices create; another named language keeps Elasticsearch's built-in analyzer of
# that name (CJK as unigrams), recorded as analysis 1.
OWN_ANALYSES = SNOWBALL_LANGUAGES | {NO_STEMMER, THAI}


def analyzer_name(language: str, plugins: Collection[str] = ()) -> str:
    """The analyzer of a passage language's field (a detected code such as ``te`` is analysed
    as `NO_STEMMER`; Lao, Khmer and Myanmar by ``icu_tokenizer`` where the plugin is present)."""
    if language in SOUTHEAST_ASIAN and ICU_PLUGIN in plugins:
        return "qwen3_icu"
    analysis = analysis_language(language)
    return f"qwen3_{analysis}" if analysis in OWN_ANALYSES else analysis


def language_field(language: str) -> str:
    """The field a passage of ``language`` is indexed in under ``auto``."""
    return f"{LANGUAGE_FIELDS}.{language}"


def text_property(language: str, plugins: Collection[str] = ()) -> dict[str, Any]:
    return {"type": "text", "analyzer": analyzer_name(language, plugins), "similarity": BM25_SIMILARITY}


def mapping_for(
    dimension: int, *, language: str = DEFAULT_LANGUAGE, plugins: Collection[str] = ()
) -> dict[str, Any]:
    """The index mapping; ``dimension`` comes from the embedding model, never a constant.

    ``text`` is analysed in ``language`` (``none`` under ``auto``, whose passages are searched
    through their language's ``bm25.<language>`` field, added as languages arrive); ``_meta``
    records the analysis, checked before every BM25 search.
    """
    text_language = NO_STEMMER if check_language(language) == "auto" else language
    properties: dict[str, Any] = {
        "text": text_property(text_language, plugins),
        "embedding": {"type": "dense_vector", "dims": dimension, "index": True, "similarity": "cosine"},
        "source": {"type": "keyword"},
        "position": {"type": "integer"},
        "meta": {"type": "object", "enabled": False},
    }
    if language == "auto":
        properties[LANGUAGE_FIELDS] = {"properties": {}}
    return {"_meta": {"qwen3_rag": analysis_meta(language)}, "properties": properties}


def index_settings(
    *,
    k1: float = DEFAULT_BM25_K1,
    b: float = DEFAULT_BM25_B,
    language: str = DEFAULT_LANGUAGE,
    plugins: Collection[str] = (),
) -> dict[str, Any]:
    """Index settings: a BM25 similarity with the embedded store's k1 and b (Elasticsearch's
    default is 1.2/0.75), so both backends score alike, and our analyzers: every one `auto` may
    need (analyzers cannot be added to an open index), or the one of ``language``."""
    settings: dict[str, Any] = {"similarity": {BM25_SIMILARITY: {"type": "BM25", "k1": k1, "b": b}}}
    if check_language(language) == "auto":
        wanted = sorted(OWN_ANALYSES)
    elif language in OWN_ANALYSES:
        wanted = [language]
    else:
        return settings
    analyzers: dict[str, Any] = {}
    filters: dict[str, Any] = {}
    for name in wanted:
        chain = ["cjk_width", "lowercase", "cjk_bigram"]
        words = stopwords(name)
        if words:
            filters[f"qwen3_stop_{name}"] = {"type": "stop", "stopwords": words}
            chain.append(f"qwen3_stop_{name}")
        if name in SNOWBALL_LANGUAGES:
            filters[f"qwen3_snowball_{name}"] = {"type": "snowball", "language": name.capitalize()}
            chain.append(f"qwen3_snowball_{name}")
        tokenizer = "thai" if name == THAI else "standard"
        analyzers[f"qwen3_{name}"] = {"type": "custom", "tokenizer": tokenizer, "filter": chain}
    if language == "auto" and ICU_PLUGIN in plugins:
        analyzers["qwen3_icu"] = {"type": "custom", "tokenizer": "icu_tokenizer", "filter": ["lowercase"]}
    return {**settings, "analysis": {"analyzer": analyzers, "filter": filters}}


def analysis_meta(language: str, languages: dict[str, int] | None = None) -> dict[str, Any]:
    """What an index of ours records about its analysis (``_meta.qwen3_rag``)."""
    own = check_language(language) == "auto" or language in OWN_ANALYSES
    meta: dict[str, Any] = {"analysis": ANALYSIS_VERSION if own else 1, "language": language}
    if language == "auto":
        meta["languages"] = dict(languages or {})
    return meta


def analyzer_description(language: str) -> str:
    if language == "auto":
        return "one field per detected language (bm25.<language>), built-in analyzers"
    name = analyzer_name(language)
    if language not in OWN_ANALYSES:
        return f"the built-in {name!r} analyzer (CJK characters as unigrams)"
    return f"{name!r} (built-in cjk_bigram for CJK, {language} words)"
