"""The TEI and vLLM wire formats' translation rules, without a model (the integration tests in
tests/integration/test_official_clients.py run them against the real server)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from starlette.exceptions import HTTPException

from qwen3_rag.server.wire import ScoreRequest, is_tei, logit, tei_error


def test_raw_scores_are_the_logits_the_probabilities_are_the_sigmoid_of() -> None:
    for value in (-7.5, -0.25, 0.0, 3.0, 12.0):
        assert logit(1 / (1 + math.exp(-value))) == pytest.approx(value, abs=1e-6)
    assert math.isfinite(logit(1.0)) and math.isfinite(logit(0.0)), "JSON has no infinity"
    assert logit(1.0) > logit(1 - 1e-6) and logit(0.0) < logit(1e-30)


def test_vllm_pairs_follow_its_length_rules() -> None:
    one = ScoreRequest(text_1="q", text_2=["a", "b"])
    assert one.pairs() == [("q", "a"), ("q", "b")]
    assert ScoreRequest(text_1=["q"], text_2="a").pairs() == [("q", "a")]
    assert ScoreRequest(text_1=["q", "r"], text_2=["a", "b"]).pairs() == [("q", "a"), ("r", "b")]
    for text_1, text_2, field in ((["q", "r"], ["a"], "text_2"), ([], ["a"], "text_1"), ("q", [], "text_2")):
        with pytest.raises(HTTPException) as refused:
            ScoreRequest(text_1=text_1, text_2=text_2).pairs()
        assert refused.value.status_code == 422 and refused.value.detail[0]["loc"] == ["body", field]


def test_the_body_tells_tei_from_vllm_and_cohere() -> None:
    assert is_tei({"query": "q", "texts": ["a"]})
    assert not is_tei({"query": "q", "documents": ["a"]})
    assert not is_tei({"query": "q", "texts": ["a"], "documents": ["b"]}), "documents wins, as /v1/rerank"
    assert not is_tei(["q"]) and not is_tei(None)


STATE = SimpleNamespace(secrets=["s3cret-key"])


def test_tei_errors_carry_tei_types_the_retry_header_and_no_secret() -> None:
    busy = tei_error(HTTPException(429, "full s3cret-key", headers={"Retry-After": "2"}), STATE)  # type: ignore[arg-type]
    assert busy.status_code == 429 and busy.headers["Retry-After"] == "2"
    assert b'"error_type":"overloaded"' in busy.body and b"s3cret-key" not in busy.body
    located = tei_error(HTTPException(422, [{"loc": ["body", "texts", 2], "msg": "too long"}]), STATE)  # type: ignore[arg-type]
    assert b'"error":"texts.2: too long"' in located.body and b'"error_type":"validation"' in located.body
