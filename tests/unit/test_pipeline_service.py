"""The whole pipeline on the embedded store, for both frameworks: index -> ask.

Uses the real all-MiniLM-L6-v2 embedder, a tiny random Qwen3 reranker (scores random but
deterministic) and, for the local-LLM path, a tiny random Qwen3 causal LM.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from qwen3_rag import RagService, SourceText
from qwen3_rag.generation import NO_LLM_HEADER, NO_PASSAGES_ANSWER
from qwen3_rag.records import display_source
from qwen3_rag.settings import Settings
from qwen3_rag.testing import SAMPLES_DIR, offline_settings
from qwen3_rerank import Qwen3Reranker, shared_models
from qwen3_rerank.testing import save_random_qwen3
from tests.conftest import cached_asset

FRAMEWORKS = ["haystack", "llamaindex"]
CHAT_TEMPLATE = (  # Qwen3's shape: an empty think block when thinking is off
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}"
    "{% endif %}"
)
QUESTION = "At what temperature does water boil at sea level?"


@pytest.fixture(scope="module")
def tiny_llm_dir(pytestconfig: pytest.Config, qwen3_tokenizer_dir: Path) -> Path:
    """A tiny random Qwen3 causal LM with a chat template shaped like Qwen3's (built once, kept in
    the asset cache: tests only read it)."""
    name = f"tiny-llm-{hashlib.sha256(CHAT_TEMPLATE.encode()).hexdigest()[:8]}"
    return cached_asset(pytestconfig, name, lambda path: _save_tiny_llm(path, qwen3_tokenizer_dir))


def _save_tiny_llm(path: Path, tokenizer_dir: Path) -> None:
    from transformers import AutoTokenizer

    staging = path.with_name(f".{path.name}.building")
    shutil.rmtree(staging, ignore_errors=True)
    save_random_qwen3(staging, tokenizer_path=tokenizer_dir, seed=3)
    tokenizer = AutoTokenizer.from_pretrained(staging)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(staging)
    os.replace(staging, path)  # whole or not at all, as `cached_asset` needs


def settings_for(tmp_path: Path, tiny_qwen3_dir: Path, **overrides: object) -> Settings:
    return offline_settings(tmp_path / "store", reranker_model=str(tiny_qwen3_dir), **overrides)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_index_then_ask_on_the_embedded_store(framework: str, tmp_path: Path, tiny_qwen3_dir: Path) -> None:
    with RagService(settings_for(tmp_path, tiny_qwen3_dir, framework=framework)) as service:
        report = service.index_paths([SAMPLES_DIR])
        answer = service.ask(QUESTION, candidates=8, top_n=3)

    assert report.files == len(list(SAMPLES_DIR.iterdir())) and report.skipped == []
    assert report.chunks > 0
    assert [p.rank for p in answer.passages] == [1, 2, 3]
    scores = [p.score for p in answer.passages]
    assert scores == sorted(scores, reverse=True)
    fused_ids = {p.id for p in answer.stages["fusion"]}
    assert len(fused_ids) == 8 and {p.id for p in answer.passages} <= fused_ids
    assert answer.stages["bm25"][0].source.endswith("water.md"), "BM25 finds the passage with the words"
    assert answer.answer.startswith(NO_LLM_HEADER)
    assert "[1]" in answer.answer and answer.passages[0].text in answer.answer
    assert set(answer.timings) == {"load", "embed", "bm25", "dense", "fusion", "rerank", "generate"}


def test_rerank_scores_are_the_cores_and_equal_in_both_frameworks(
    tmp_path: Path, tiny_qwen3_dir: Path
) -> None:
    answers = {}
    for framework in FRAMEWORKS:
        with RagService(settings_for(tmp_path, tiny_qwen3_dir, framework=framework)) as service:
            if framework == "haystack":
                service.index_paths([SAMPLES_DIR])
            answers[framework] = service.ask(QUESTION, candidates=6, top_n=6)
    haystack, llamaindex = answers["haystack"], answers["llamaindex"]
    assert [(p.id, p.score) for p in haystack.passages] == [(p.id, p.score) for p in llamaindex.passages]
    with Qwen3Reranker(str(tiny_qwen3_dir), device="cpu") as core:
        expected = core.score(QUESTION, [p.text for p in haystack.passages])
    assert [p.score for p in haystack.passages] == pytest.approx(expected, abs=1e-6)


def test_dense_retrieval_finds_a_paraphrase_without_shared_words(
    tmp_path: Path, tiny_qwen3_dir: Path
) -> None:
    with RagService(settings_for(tmp_path, tiny_qwen3_dir)) as service:
        service.index_paths([SAMPLES_DIR])
        dense = service.retriever.dense("biggest creature ever", candidates=3)
    assert dense[0].source.endswith("animals.md")


def test_reindexing_replaces_instead_of_duplicating(tmp_path: Path, tiny_qwen3_dir: Path) -> None:
    with RagService(settings_for(tmp_path, tiny_qwen3_dir)) as service:
        first = service.index_paths([SAMPLES_DIR])
        count = service.document_count()
        service.index_paths([SAMPLES_DIR])
        assert service.document_count() == count == first.chunks


def test_reindexing_a_folder_removes_the_passages_of_files_gone_from_it(
    tmp_path: Path, tiny_qwen3_dir: Path
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "keep.txt").write_text("Tea is brewed from leaves.", encoding="utf-8")
    (folder / "gone.txt").write_text("Coffee is brewed from beans.", encoding="utf-8")
    elsewhere = tmp_path / "docs-archive.txt"  # shares the folder's name as a prefix, not its path
    elsewhere.write_text("Cocoa is made from pods.", encoding="utf-8")
    with RagService(settings_for(tmp_path, tiny_qwen3_dir)) as service:
        service.index_paths([folder, elsewhere])
        (folder / "gone.txt").unlink()
        report = service.index_paths([folder])
        sources = {Path(p.source).name for p in service.retrieve("brewed", candidates=10).fused}
    assert report.removed == 1
    assert sources == {"keep.txt", "docs-archive.txt"}


def test_an_index_written_with_absolute_sources_is_shown_and_reindexed_by_relative_names(
    tmp_path: Path, tiny_qwen3_dir: Path
) -> None:
    """Indices written before sources were named relative to their folder hold absolute paths:
    they answer, shown by their last two parts, and re-indexing the folder replaces them."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "tea.txt").write_text("Tea is brewed from leaves.", encoding="utf-8")
    with RagService(settings_for(tmp_path, tiny_qwen3_dir)) as service:
        service.index_documents([SourceText("Tea is brewed from leaves.", str(folder.resolve() / "tea.txt"))])
        old = service.ask("brewed").passages
        assert [display_source(p.source) for p in old] == ["docs/tea.txt"]
        assert (
            "docs/tea.txt" in service.ask("brewed").answer
            and str(tmp_path) not in service.ask("brewed").answer
        )
        report = service.index_paths([folder])
        assert report.removed == 1 and service.document_count() == 1
        assert [p.source for p in service.ask("brewed").passages] == ["docs/tea.txt"]


def test_the_index_persists_for_a_new_service(tmp_path: Path, tiny_qwen3_dir: Path) -> None:
    with RagService(settings_for(tmp_path, tiny_qwen3_dir)) as service:
        service.index_documents([SourceText("The capital of Australia is Canberra.", "facts.txt")])
    with RagService(settings_for(tmp_path, tiny_qwen3_dir)) as service:
        assert service.document_count() == 1
        assert service.ask("capital of Australia").passages[0].source == "facts.txt"


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_local_llm_writes_the_answer(
    framework: str, tmp_path: Path, tiny_qwen3_dir: Path, tiny_llm_dir: Path
) -> None:
    settings = settings_for(
        tmp_path, tiny_qwen3_dir, framework=framework, llm="hf", llm_model=str(tiny_llm_dir), max_new_tokens=6
    )
    with RagService(settings) as service:
        service.index_documents([SourceText("Water boils at 100 degrees Celsius at sea level.", "water.txt")])
        answer = service.ask(QUESTION)
    # A random model writes nonsense (possibly only special tokens, decoded to ""), never the
    # labelled passage list that stands in for an answer without an LLM.
    assert isinstance(answer.answer, str)
    assert not answer.answer.startswith(NO_LLM_HEADER)
    assert answer.passages[0].source == "water.txt"
    assert answer.timings["generate"] > 0


def test_asking_an_empty_store_returns_no_passages(tmp_path: Path, tiny_qwen3_dir: Path) -> None:
    with RagService(settings_for(tmp_path, tiny_qwen3_dir)) as service:
        answer = service.ask(QUESTION)
    assert answer.passages == [] and answer.answer == NO_PASSAGES_ANSWER


def test_a_blank_question_is_refused(tmp_path: Path, tiny_qwen3_dir: Path) -> None:
    with (
        RagService(settings_for(tmp_path, tiny_qwen3_dir)) as service,
        pytest.raises(ValueError, match="question"),
    ):
        service.ask("   ")


def test_a_reranker_passed_in_stays_open_after_close(tmp_path: Path, tiny_qwen3_dir: Path) -> None:
    reranker = Qwen3Reranker(str(tiny_qwen3_dir), device="cpu")
    with RagService(settings_for(tmp_path, tiny_qwen3_dir), reranker=reranker) as service:
        service.index_documents([SourceText("Water boils at 100 degrees.", "w.txt")])
        assert service.ask(QUESTION).passages
    assert len(reranker.score("q", ["still usable"])) == 1
    reranker.close()


def test_concurrent_asks_share_one_set_of_models_and_agree(tmp_path: Path, tiny_qwen3_dir: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with RagService(settings_for(tmp_path, tiny_qwen3_dir)) as service:
        service.index_documents([SourceText("Water boils at 100 degrees Celsius at sea level.", "w.txt")])
        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = list(pool.map(lambda _: service.ask(QUESTION), range(4)))
        assert len(shared_models.keys()) == 1, "the reranker weights were loaded once"
    assert len({tuple((p.id, p.score) for p in a.passages) for a in answers}) == 1


def test_indexing_in_several_batches_keeps_every_chunk(
    tmp_path: Path, tiny_qwen3_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("qwen3_rag.service.WRITE_BATCH_CHUNKS", 2)
    with RagService(settings_for(tmp_path, tiny_qwen3_dir)) as service:
        report = service.index_paths([SAMPLES_DIR])
        assert report.chunks > 2, "more chunks than one batch holds"
        assert service.document_count() == report.chunks


def test_the_local_llamaindex_llm_prompts_without_thinking(tiny_llm_dir: Path) -> None:
    from llama_index.core.base.llms.types import ChatMessage

    from qwen3_rag.llamaindex import build_llm

    settings = Settings.from_env({}, llm="hf", llm_model=str(tiny_llm_dir), device="cpu")
    llm = build_llm(settings)
    prompt = llm.messages_to_prompt([ChatMessage(role="user", content="When does water boil?")])
    assert prompt.startswith("<|im_start|>user\nWhen does water boil?<|im_end|>")
    assert prompt.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_server_side_fusion_needs_elasticsearch(tmp_path: Path, tiny_qwen3_dir: Path) -> None:
    from qwen3_rag import StoreError

    with RagService(settings_for(tmp_path, tiny_qwen3_dir, fusion="elasticsearch")) as service:
        service.index_documents([SourceText("Water boils at 100 degrees.", "w.txt")])
        with pytest.raises(StoreError, match="fusion='elasticsearch' needs the Elasticsearch backend"):
            service.retrieve(QUESTION)


def test_model_loading_is_timed_apart_from_reranking(tmp_path: Path, tiny_qwen3_dir: Path) -> None:
    with RagService(settings_for(tmp_path, tiny_qwen3_dir)) as service:
        service.index_documents([SourceText("Water boils at 100 degrees.", "w.txt")])
        first, second = service.ask(QUESTION), service.ask(QUESTION)
    assert "load" in first.timings and "load" not in second.timings
    assert first.timings["rerank"] < first.timings["load"]
