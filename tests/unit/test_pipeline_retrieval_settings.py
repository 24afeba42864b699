"""Retrieval settings: language, BM25 k1/b and fusion reach both backends, bad values are named."""

from __future__ import annotations

import pytest

from qwen3_rag.settings import Settings
from qwen3_rag.stores.analysis import ANALYSIS_VERSION, stopwords
from qwen3_rag.stores.elasticsearch import BM25_SIMILARITY, index_settings, mapping_for
from qwen3_rag.stores.es_analysis import ICU_PLUGIN, analyzer_description, analyzer_name


def test_retrieval_settings_are_read_from_the_environment() -> None:
    environ = {
        "QWEN3_RAG_LANGUAGE": "german",
        "QWEN3_RAG_BM25_K1": "1.2",
        "QWEN3_RAG_BM25_B": "0.75",
        "QWEN3_RAG_FUSION_METHOD": "convex",
        "QWEN3_RAG_FUSION_WEIGHT": "0.4",
    }
    settings = Settings.from_env(environ, device="cpu")
    assert (settings.language, settings.bm25_k1, settings.bm25_b) == ("german", 1.2, 0.75)
    assert (settings.fusion_method, settings.fusion_weight) == ("convex", 0.4)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("language", "klingon", r"language \(QWEN3_RAG_LANGUAGE\): language must be one of .*english"),
        ("bm25_b", 1.5, r"bm25_b \(QWEN3_RAG_BM25_B\): .*less than or equal to 1"),
        ("fusion_method", "max", r"fusion_method \(QWEN3_RAG_FUSION_METHOD\): .*'rrf' or 'convex'"),
        ("fusion_weight", -0.1, r"fusion_weight \(QWEN3_RAG_FUSION_WEIGHT\): .*greater than or equal to 0"),
    ],
)
def test_bad_retrieval_settings_are_named(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.from_env({}, device="cpu", **{field: value})


def test_elasticsearch_indices_analyse_with_built_in_filters_and_our_bm25() -> None:
    auto = mapping_for(384, language="auto")
    assert auto["properties"]["text"] == {
        "type": "text",
        "analyzer": "qwen3_none",
        "similarity": BM25_SIMILARITY,
    }
    assert auto["properties"]["bm25"] == {"properties": {}}  # one field per language, added as they come
    assert auto["_meta"]["qwen3_rag"] == {"analysis": ANALYSIS_VERSION, "language": "auto", "languages": {}}
    assert mapping_for(384, language="russian")["properties"]["text"]["analyzer"] == "qwen3_russian"
    # A named language without a Snowball stemmer in Elasticsearch keeps its built-in analyzer.
    assert mapping_for(384, language="indonesian")["properties"]["text"]["analyzer"] == "indonesian"
    settings = index_settings(k1=0.9, b=0.4, language="auto")
    assert settings["similarity"] == {BM25_SIMILARITY: {"type": "BM25", "k1": 0.9, "b": 0.4}}
    russian = settings["analysis"]["analyzer"]["qwen3_russian"]
    assert russian["tokenizer"] == "standard"
    assert russian["filter"] == [
        "cjk_width",
        "lowercase",
        "cjk_bigram",
        "qwen3_stop_russian",
        "qwen3_snowball_russian",
    ]
    assert settings["analysis"]["filter"]["qwen3_stop_russian"]["stopwords"] == stopwords("russian")
    assert settings["analysis"]["analyzer"]["qwen3_thai"]["tokenizer"] == "thai"
    assert settings["analysis"]["analyzer"]["qwen3_none"]["filter"] == [
        "cjk_width",
        "lowercase",
        "cjk_bigram",
    ]
    assert "analysis" not in index_settings(language="indonesian")


def test_an_index_of_one_named_language_declares_only_that_languages_analysis() -> None:
    analysis = index_settings(language="english")["analysis"]
    assert list(analysis["analyzer"]) == ["qwen3_english"]
    assert set(analysis["filter"]) == {"qwen3_stop_english", "qwen3_snowball_english"}


@pytest.mark.parametrize("language", ["lo", "km", "my"])
def test_lao_khmer_and_myanmar_use_icu_only_where_the_plugin_is_installed(language: str) -> None:
    # Without analysis-icu, Elasticsearch keeps a run of these scripts whole, as `qwen3_none` does.
    assert analyzer_name(language) == "qwen3_none"
    assert analyzer_name(language, plugins={ICU_PLUGIN}) == "qwen3_icu"
    icu = index_settings(language="auto", plugins={ICU_PLUGIN})["analysis"]["analyzer"]["qwen3_icu"]
    assert icu["tokenizer"] == "icu_tokenizer"
    assert "qwen3_icu" not in index_settings(language="auto")["analysis"]["analyzer"]


def test_the_creation_log_names_the_analyzer_an_index_gets() -> None:
    assert "bm25.<language>" in analyzer_description("auto")
    assert analyzer_description("russian").startswith("'qwen3_russian'")
    # A language we have no analysis of keeps Elasticsearch's own analyzer of that name.
    assert analyzer_description("indonesian").startswith("the built-in 'indonesian' analyzer")
