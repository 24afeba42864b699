"""Text analysis by script and language: CJK bigrams as Lucene's CJKAnalyzer makes them, other words
by Unicode word boundaries (UAX #29) with each language's Snowball stemmer."""

from __future__ import annotations

import pytest

from qwen3_rag.stores.analysis import LANGUAGES, Analyzer, check_language, detect_language, words


def terms(text: str, language: str = "english") -> list[str]:
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


def test_auto_is_the_first_choice_and_an_unknown_language_lists_the_choices() -> None:
    assert LANGUAGES[0] == "auto" and Analyzer("auto").tokens(["dogs"]) == [["dog"]]
    with pytest.raises(ValueError, match=r"language must be one of auto, none, arabic, .*english"):
        check_language("chinese")


def test_combining_marks_stay_in_their_word_as_in_the_standard_tokenizer() -> None:
    # Python's \w stops at a vowel sign: this sentence used to give the single term "पढ".
    assert terms("हिन्दी भाषा में किताब पढ़ना", "none") == ["हिन्दी", "भाषा", "में", "किताब", "पढ़ना"]
    assert terms("తెలుగు భాష", "none") == ["తెలుగు", "భాష"]


def test_words_follow_unicode_word_boundaries() -> None:
    # UAX #29 keeps an apostrophe or a dot between letters or digits inside the word.
    assert words("don't stop at 3.14, U.S.A!") == ["don't", "stop", "at", "3.14", "U.S.A"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ภาษาไทยเป็นภาษาที่ไม่มีการเว้นวรรค", ["ภาษา", "ไทย", "เป็น", "ภาษา", "ที่", "ไม่มี", "การ", "เว้น", "วรรค"]),
        ("ພາສາລາວເປັນພາສາ", ["ພາສາ", "ລາວ", "ເປັນ", "ພາສາ"]),
    ],
)
def test_unspaced_scripts_are_segmented_into_dictionary_words(text: str, expected: list[str]) -> None:
    assert terms(text, "thai") == expected


def test_each_language_gets_its_own_stemmer() -> None:
    assert terms("книгами читали", "russian") == ["книг", "чита"]
    assert terms("kirjastossa kirjoja", "finnish") == ["kirjasto", "kirj"]
    assert terms("والكتاب المكتبات", "arabic") == ["والكتاب", "مكتب"]


def test_the_language_of_a_passage_is_detected() -> None:
    assert detect_language("Библиотека находится в центре города, и в ней много старых книг.") == "russian"
    assert (
        detect_language("Kirjasto sijaitsee kaupungin keskustassa, ja siellä on paljon kirjoja.") == "finnish"
    )
    assert detect_language("The library is in the centre of the town and holds many old books.") == "english"
    # A language without a Snowball stemmer keeps its code (its own BM25 part, words unstemmed).
    assert detect_language("మహా సముద్రాలు ఎన్ని ఉన్నాయి? భూమిపై ఐదు మహాసముద్రాలు ఉన్నాయి.") == "te"
    assert detect_language("12 345 !") == "none"


def test_a_query_is_detected_among_the_languages_of_the_index() -> None:
    # Alone, a short Indonesian question may read as Malay or Javanese; among an index's languages
    # it is the index's Indonesian.
    question = "Berapa jumlah penduduk kota Jakarta?"
    assert detect_language(question, among=["english", "id", "russian"]) == "id"


def test_an_index_of_two_languages_records_them_and_stems_each_in_its_own(tmp_path) -> None:
    import json

    from qwen3_rag.records import Chunk
    from qwen3_rag.stores.memory import MIN_PART_PASSAGES, MemoryStore

    towns = ["Москва", "Казань", "Самара", "Тверь", "Пермь"]
    russian = [
        f"В городе {town} есть {n} библиотек, и читатели каждый день берут там старые книги и журналы."
        for town in towns
        for n in range(5)
    ]
    english = [
        f"The town number {n} of {town} has libraries where readers borrow books."
        for town in ("Leeds", "York", "Bath", "Ely", "Hull")
        for n in range(5)
    ]
    assert len(russian) >= MIN_PART_PASSAGES and len(english) >= MIN_PART_PASSAGES
    chunks = [Chunk.create(text, f"doc{i}", 0) for i, text in enumerate([*russian, *english])]
    store = MemoryStore(tmp_path, "mixed")
    store.write(chunks, [[1.0]] * len(chunks))
    generation = tmp_path / "mixed" / (tmp_path / "mixed" / "CURRENT").read_text()
    manifest = json.loads((generation / "manifest.json").read_text())
    assert manifest["languages"] == {"english": 25, "russian": 25}
    # "книгами" shares only its stem with the passages' "книги"; "borrowing" with "borrow".
    assert all(hit.text in russian for hit in store.bm25("Где библиотека с книгами?", top_k=5))
    assert all(hit.text in english for hit in store.bm25("Where are libraries for borrowing?", top_k=5))
    reopened = MemoryStore(tmp_path, "mixed")
    assert reopened.bm25("книгами", top_k=1)[0].text in russian
