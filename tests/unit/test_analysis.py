"""Text analysis by script: CJK bigrams as Lucene's CJKAnalyzer makes them, words as before."""

from __future__ import annotations

import pytest

from qwen3_rag.stores.analysis import LANGUAGES, Analyzer, check_language


def terms(text: str, language: str = "auto") -> list[str]:
    return Analyzer(language).tokens([text])[0]


def test_chinese_runs_become_overlapping_bigrams() -> None:
    assert terms("解释量子纠缠") == ["解释", "释量", "量子", "子纠", "纠缠"]


def test_punctuation_and_spaces_end_a_run_and_a_lone_character_is_a_unigram() -> None:
    # cjk_bigram bigrams only adjacent characters; one without a neighbour is kept alone.
    assert terms("量子，的 纠缠。") == ["量子", "的", "纠缠"]


def test_english_words_keep_stemming_and_stop_words() -> None:
    assert terms("The running dogs") == ["run", "dog"]


def test_mixed_script_text_is_analysed_per_script_without_choosing_a_language() -> None:
    assert terms("BERT模型的training data") == ["bert", "模型", "型的", "train", "data"]
    assert terms("Transformers 在 2018年 改变了NLP") == [
        "transform",
        "在",
        "2018",
        "年",
        "改变",
        "变了",
        "nlp",
    ]


def test_japanese_kana_and_kanji_are_bigrammed_across_scripts() -> None:
    assert terms("東京タワーに行く") == ["東京", "京タ", "タワ", "ワー", "ーに", "に行", "行く"]


def test_half_width_katakana_and_full_width_latin_are_folded_as_cjk_width_does() -> None:
    assert terms("ｶﾞｲﾄﾞ") == terms("ガイド") == ["ガイ", "イド"]
    assert terms("ＢＥＲＴ") == ["bert"]


def test_korean_words_are_bigrammed_within_each_spaced_word() -> None:
    assert terms("양자 얽힘을 설명하다") == ["양자", "얽힘", "힘을", "설명", "명하", "하다"]


def test_a_query_shares_terms_with_a_passage_that_words_it_differently() -> None:
    passage = set(terms("量子纠缠是一种量子力学现象。"))
    assert {"量子", "纠缠"} <= passage & set(terms("解释量子纠缠"))


def test_without_a_language_words_are_neither_stemmed_nor_stopped_but_cjk_is_still_bigrammed() -> None:
    assert terms("The running 量子纠缠", "none") == ["the", "running", "量子", "子纠", "纠缠"]


def test_auto_is_the_default_and_an_unknown_language_lists_the_choices() -> None:
    assert LANGUAGES[0] == "auto" and Analyzer().tokens(["dogs"]) == [["dog"]]
    with pytest.raises(ValueError, match=r"language must be one of auto, none, arabic, .*english"):
        check_language("chinese")
