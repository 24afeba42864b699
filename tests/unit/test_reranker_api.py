"""The public surface: ordering, streaming, bad input, load errors."""

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from qwen3_rerank import InvalidInput, Qwen3Reranker, RerankResult, config, loading
from qwen3_rerank import reranker as reranker_module
from qwen3_rerank.forward import OutOfMemoryError
from qwen3_rerank.reranker import MIN_DOCUMENT_TOKENS, best_first
from qwen3_rerank.testing import random_qwen3_config

QUERY = "How do vaccines work?"
DOCUMENTS = [
    "Vaccines train the immune system to recognise a pathogen.",
    "The stock market closed higher today.",
    "mRNA vaccines deliver instructions for making a spike protein.",
    "A recipe for lemon cake.",
]


@pytest.fixture
def reranker(tiny_qwen3_dir):
    return Qwen3Reranker(str(tiny_qwen3_dir), device="cpu")


def test_rerank_sorts_by_score_and_keeps_index_and_text(reranker):
    scores = reranker.score(QUERY, DOCUMENTS)
    results = reranker.rerank(QUERY, DOCUMENTS)
    assert [r.index for r in results] == sorted(range(4), key=lambda i: -scores[i])
    assert all(isinstance(r, RerankResult) and r.document == DOCUMENTS[r.index] for r in results)
    assert [r.score for r in results] == sorted(scores, reverse=True)


def test_top_k_keeps_the_best(reranker):
    assert reranker.rerank(QUERY, DOCUMENTS, top_n=2) == reranker.rerank(QUERY, DOCUMENTS)[:2]


def test_equal_scores_keep_input_order(reranker):
    assert [r.index for r in reranker.rerank(QUERY, ["same"] * 4)] == [0, 1, 2, 3]


def test_best_first_ranks_scores_from_elsewhere_by_the_same_rule():
    # The rule a server-routed pipeline ranks with: highest first, ties in input order, cut last.
    scores = [0.2, 0.9, 0.2, float("-inf"), 0.5]
    assert best_first(scores) == [1, 4, 0, 2, 3]
    assert best_first(scores, top_n=3) == [1, 4, 0]


def test_scores_are_probabilities_in_input_order(reranker):
    scores = reranker.score(QUERY, DOCUMENTS)
    assert all(0.0 < s < 1.0 for s in scores)
    assert reranker.score(QUERY, DOCUMENTS[::-1]) == pytest.approx(scores[::-1], abs=1e-6)


def test_a_generator_of_documents_streams_in_chunks(reranker, monkeypatch):
    expected = reranker.score(QUERY, DOCUMENTS * 3)
    monkeypatch.setattr(reranker_module, "CHUNK_DOCUMENTS", 5)
    assert reranker.score(QUERY, (d for d in DOCUMENTS * 3)) == pytest.approx(expected, abs=1e-6)


def test_a_stream_is_consumed_one_chunk_at_a_time(reranker, monkeypatch):
    monkeypatch.setattr(reranker_module, "CHUNK_DOCUMENTS", 4)
    consumed = []
    decoder = reranker.loaded_model.scorer.decoder
    real_last_hidden = decoder.last_hidden

    def record_progress(*arguments):
        consumed.append(produced)
        return real_last_hidden(*arguments)

    def documents():
        nonlocal produced
        for produced in range(1, 13):
            yield DOCUMENTS[produced % 4]

    produced = 0
    monkeypatch.setattr(decoder, "last_hidden", record_progress)
    assert len(reranker.score(QUERY, documents())) == 12
    assert consumed[0] == 4  # one chunk read before the first forward pass, not the whole stream


def test_out_of_memory_splits_the_batch_without_losing_or_reordering(reranker, monkeypatch):
    expected = reranker.score(QUERY, DOCUMENTS)
    decoder = reranker.loaded_model.scorer.decoder
    real_last_hidden = decoder.last_hidden
    batch_sizes = []

    def small_batches_only(input_ids, lengths, prefix):
        batch_sizes.append(len(input_ids))
        if len(input_ids) > 1:
            raise OutOfMemoryError("simulated")
        return real_last_hidden(input_ids, lengths, prefix)

    monkeypatch.setattr(decoder, "last_hidden", small_batches_only)
    assert reranker.score(QUERY, DOCUMENTS) == pytest.approx(expected, abs=1e-6)
    assert batch_sizes[0] == 4 and max(batch_sizes[1:]) < 4


def test_empty_documents_give_empty_results(reranker):
    assert reranker.score(QUERY, []) == []
    assert reranker.rerank(QUERY, []) == []


@pytest.mark.parametrize("query", ["", "   \n"])
def test_blank_query_is_rejected_by_name(reranker, query):
    with pytest.raises(ValueError, match="query"):
        reranker.score(query, DOCUMENTS)


def test_a_non_string_document_is_named_by_index(reranker):
    with pytest.raises(TypeError, match=r"documents\[2\]"):
        reranker.score(QUERY, ["a", "b", 3])


@pytest.mark.parametrize(
    ("argument", "value"),
    [("max_length", 0), ("batch_tokens", -1), ("long_documents", "split"), ("window_overlap", -5)],
)
def test_bad_settings_are_rejected_by_name(tiny_qwen3_dir, argument, value):
    with pytest.raises(ValueError, match=argument):
        Qwen3Reranker(str(tiny_qwen3_dir), device="cpu", **{argument: value})


def test_bad_top_n_is_rejected(reranker):
    with pytest.raises(ValueError, match="top_n"):
        reranker.rerank(QUERY, DOCUMENTS, top_n=0)


def test_bad_dtype_and_device_are_rejected(tiny_qwen3_dir):
    with pytest.raises(ValueError, match="dtype"):
        Qwen3Reranker(str(tiny_qwen3_dir), dtype="int3")
    with pytest.raises(ValueError, match="device"):
        Qwen3Reranker(str(tiny_qwen3_dir), device="gpu-please")


def test_defaults_on_cpu_are_float32(reranker):
    assert reranker.device == torch.device("cpu") and reranker.config.dtype == torch.float32


def test_a_missing_model_directory_says_what_to_pass(tmp_path):
    with pytest.raises(OSError, match=r"there is no directory .*Pass model= ") as failure:
        Qwen3Reranker(str(tmp_path / "nowhere"), local_files_only=True)
    assert "QWEN3_RERANK_MODEL" not in str(failure.value)  # the library does not read it


def test_a_directory_without_tokenizer_files_says_so(tmp_path, tiny_qwen3_dir):
    for saved in Path(tiny_qwen3_dir).iterdir():
        if saved.name in ("config.json", "model.safetensors", "generation_config.json"):
            (tmp_path / saved.name).symlink_to(saved)
    with pytest.raises(OSError, match=r"no tokenizer files in .*tokenizer\.json"):
        Qwen3Reranker(str(tmp_path), device="cpu")


def test_a_model_without_single_token_yes_and_no_is_not_a_reranker(tmp_path):
    characters = {c: i for i, c in enumerate("abcdefghijklmnopqrstuvwxyz<>|_:. \n")}
    backend = Tokenizer(models.BPE(vocab=characters, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    PreTrainedTokenizerFast(tokenizer_object=backend).save_pretrained(tmp_path)
    from transformers import Qwen3ForCausalLM

    Qwen3ForCausalLM(random_qwen3_config()).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="not a Qwen3 reranker"):
        Qwen3Reranker(str(tmp_path), device="cpu")


def test_an_old_transformers_gets_an_upgrade_hint(tiny_qwen3_dir, monkeypatch):
    monkeypatch.setattr(loading, "transformers", SimpleNamespace(__version__="4.40.0"))
    with pytest.raises(RuntimeError, match="pip install -U"):
        Qwen3Reranker(str(tiny_qwen3_dir), device="cpu")


def test_a_bare_cuda_device_names_the_current_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    assert config.resolve_device("cuda") == torch.device("cuda", 1)
    assert config.resolve_device(None) == torch.device("cuda", 1)
    assert config.resolve_device("cuda:0") == torch.device("cuda", 0)


def test_a_query_that_leaves_the_documents_no_room_is_refused_by_name(reranker):
    # 19,999 digits are 19,999 tokens: truncation would cut every document out of the prompt and
    # score the query alone, the same for each document.
    query = "7" * 19_999
    for call in (
        lambda: reranker.score(query, DOCUMENTS),
        lambda: reranker.rerank(query, DOCUMENTS),
        lambda: reranker.prepare(query, DOCUMENTS),
    ):
        with pytest.raises(InvalidInput, match=r"query is too long") as caught:
            call()
        assert caught.value.location == ("query",)
        assert "max_length=8192" in str(caught.value) and f"at least {MIN_DOCUMENT_TOKENS}" in str(
            caught.value
        )


def test_the_query_may_fill_the_prompt_up_to_the_documents_minimum(tiny_qwen3_dir):
    reranker = Qwen3Reranker(str(tiny_qwen3_dir), device="cpu", max_length=96)
    encoder = reranker._encoder
    query = "Which"
    while encoder.document_room(f"{query} city", None) >= MIN_DOCUMENT_TOKENS:
        query = f"{query} city"
    assert encoder.document_room(query, None) >= MIN_DOCUMENT_TOKENS
    scores = reranker.score(query, DOCUMENTS)
    assert max(scores) - min(scores) > 1e-4  # the documents still count
    with pytest.raises(InvalidInput, match=r"leaving \d+ for the document"):
        reranker.score(f"{query} city", DOCUMENTS)
