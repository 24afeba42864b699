"""The embedding model: a clear error when it cannot load, and, from `index` and `eval`, one line
when it does not read the corpus's languages."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from qwen3_rag.embedding import MULTILINGUAL_MODEL, Embedder, declared_languages, language_warning
from qwen3_rag.records import SourceText
from qwen3_rag.testing import minilm_model_dir, offline_settings
from qwen3_rerank.loading import ModelLoadError

CHINESE = [
    "量子纠缠是一种量子力学现象，两个粒子的状态相互关联，即使它们相距遥远。",
    "光合作用是植物利用光能把二氧化碳和水合成有机物的过程，同时释放氧气。",
    "长城是中国古代的军事防御工程，东起山海关，西至嘉峪关，全长数千公里。",
]
ENGLISH = ["Olympus Mons is the tallest volcano on Mars.", "Bread rises because yeast makes carbon dioxide."]


def test_an_embedder_needs_a_model_name() -> None:
    with pytest.raises(ValueError, match="model must name a sentence-transformers model id or directory"):
        Embedder("")


def test_a_missing_model_directory_is_named_with_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "no-model"
    with pytest.raises(ModelLoadError, match="cannot load the embedding model") as refused:
        Embedder(str(missing)).embed_documents(["a passage"])
    assert f"there is no directory '{missing}'" in str(refused.value)
    assert "Pass model= a sentence-transformers model id or directory" in str(refused.value)


def test_the_offline_minilm_declares_english_in_its_model_card() -> None:
    assert declared_languages(str(minilm_model_dir())) == frozenset({"en"})
    assert declared_languages("/nonexistent/model") is None


def test_the_warning_names_a_multilingual_model_only_when_most_passages_are_unread() -> None:
    minilm = str(minilm_model_dir())
    warning = language_warning(minilm, CHINESE + ENGLISH[:1])
    assert warning is not None and "\n" not in warning
    assert MULTILINGUAL_MODEL in warning and "zh" in warning
    assert language_warning(minilm, ENGLISH + CHINESE[:1]) is None


def test_indexing_chinese_with_minilm_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from qwen3_rag.service import RagService

    with caplog.at_level(logging.WARNING), RagService(offline_settings(tmp_path)) as service:
        service.index_documents([SourceText(text, source=f"zh{i}.txt") for i, text in enumerate(CHINESE)])
    warnings = [record.getMessage() for record in caplog.records if MULTILINGUAL_MODEL in record.getMessage()]
    assert len(warnings) == 1


def test_the_eval_report_records_the_warning(tmp_path: Path) -> None:
    from qwen3_rag.evaluation import run_evaluation
    from qwen3_rag.report import markdown

    dataset = tmp_path / "zh-set"
    (dataset / "qrels").mkdir(parents=True)
    corpus = [{"_id": f"d{i}", "text": text} for i, text in enumerate(CHINESE)]
    (dataset / "corpus.jsonl").write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in corpus))
    (dataset / "queries.jsonl").write_text(
        json.dumps({"_id": "q0", "text": "什么是量子纠缠"}, ensure_ascii=False)
    )
    (dataset / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq0\td0\t1\n")
    result = run_evaluation(dataset, offline_settings(tmp_path / "data"), stages=["bm25"])
    assert len(result.warnings) == 1 and MULTILINGUAL_MODEL in result.warnings[0]
    assert result.warnings[0] in markdown(result)
