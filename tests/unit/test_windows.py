"""Long documents in windows: the best window counts, and each window is scored as plain text."""

import pytest

from qwen3_rerank import Qwen3Reranker
from qwen3_rerank.windows import split_into_windows

QUERY = "Where is the Eiffel Tower?"
LONG_DOCUMENT = " ".join(f"Sentence {i} talks about topic {i % 7} in some detail." for i in range(120))


@pytest.fixture
def windowed(tiny_qwen3_dir):
    return Qwen3Reranker(
        str(tiny_qwen3_dir), device="cpu", max_length=200, long_documents="window", window_overlap=32
    )


def test_a_document_that_fits_is_one_window(windowed):
    [result] = windowed.rerank(QUERY, ["The Eiffel Tower is in Paris."])
    assert result.windows == 1


def test_windows_fit_overlap_and_cover_the_whole_document(windowed):
    windows = split_into_windows(windowed._encoder, QUERY, LONG_DOCUMENT, None, overlap=32)
    assert len(windows) > 2
    assert windows[0].startswith("Sentence 0 ") and LONG_DOCUMENT.endswith(windows[-1])
    for window in windows:
        [ids] = windowed._encoder.encode([(QUERY, window)])
        assert len(ids) < windowed.config.max_length  # nothing truncated away
    starts = [LONG_DOCUMENT.index(window) for window in windows]
    for (start, window), next_start in zip(zip(starts, windows, strict=True), starts[1:], strict=False):
        assert start < next_start < start + len(window)  # consecutive windows overlap


def test_the_document_scores_its_best_window(windowed, tiny_qwen3_dir):
    windows = split_into_windows(windowed._encoder, QUERY, LONG_DOCUMENT, None, overlap=32)
    alone = Qwen3Reranker(str(tiny_qwen3_dir), device="cpu", max_length=200).score(QUERY, windows)
    [result] = windowed.rerank(QUERY, [LONG_DOCUMENT])
    assert result.windows == len(windows)
    assert result.score == pytest.approx(max(alone), abs=1e-6)


def test_truncation_mode_sees_only_the_start(tiny_qwen3_dir):
    truncating = Qwen3Reranker(str(tiny_qwen3_dir), device="cpu", max_length=200)
    [result] = truncating.rerank(QUERY, [LONG_DOCUMENT])
    assert result.windows == 1


def test_overlap_as_large_as_the_window_is_rejected(tiny_qwen3_dir):
    reranker = Qwen3Reranker(
        str(tiny_qwen3_dir), device="cpu", max_length=200, long_documents="window", window_overlap=150
    )
    with pytest.raises(ValueError, match="window_overlap"):
        reranker.score(QUERY, [LONG_DOCUMENT])
