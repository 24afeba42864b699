"""Client input never gets a 5xx, and error bodies stay small, JSON-safe and carry the request id
(issue 13, defect 2: ``"top_n": NaN`` and lone surrogates got 500; a 1.9 MB invalid body got a
4 MB 422)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from qwen3_rag.server import ServerSettings, create_app
from qwen3_rag.server.errors import MAX_ERRORS, MAX_INPUT_CHARS, excerpt
from qwen3_rerank import Qwen3Reranker
from tests.server_client import LocalTestClient
from tests.server_fakes import FakePipeline

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def client(tiny_qwen3_dir: Path) -> Iterator[LocalTestClient]:
    with Qwen3Reranker(str(tiny_qwen3_dir), device="cpu") as reranker:
        app = create_app(
            ServerSettings(rag="on", allow_writes=True),
            reranker=reranker,
            rag_factory=lambda settings, reranker: FakePipeline(),
        )
        with LocalTestClient(app) as client:
            yield client


def locations(response) -> list[list]:
    return [error["loc"] for error in response.json()["detail"]]


@pytest.mark.parametrize(
    ("path", "raw", "location"),
    [
        ("/v1/rerank", '{"query": "q", "documents": ["a"], "top_n": NaN}', ["body", "top_n"]),
        ("/v1/rerank", '{"query": "q", "documents": ["a"], "top_n": Infinity}', ["body", "top_n"]),
        ("/v1/ask", '{"question": "q", "candidates": NaN}', ["body", "candidates"]),
        ("/v1/rerank", '{"query": "a\\ud800b", "documents": ["a"]}', ["body", "query"]),
        ("/v1/rerank", '{"query": "q", "documents": ["a\\udfffb"]}', ["body", "documents", 0]),
        (  # an object's fields are echoed: refused at validation, by field
            "/v1/rerank",
            '{"query": "q", "documents": ["a", {"text": "\\ud800"}]}',
            ["body", "documents", 1, "DocumentObject", "text"],
        ),
        ("/v1/rerank", '{"query": "\\ud800", "documents": 5}', ["body", "documents"]),
        ("/v1/ask", '{"question": "\\ud83d"}', ["body", "question"]),
        (
            "/v1/documents",
            '{"documents": [{"text": "t", "source": "\\ud800"}]}',
            ["body", "documents", 0, "source"],
        ),
        ("/v1/documents", '{"documents": [{"text": "t", "source": "s", "meta": {"n": NaN}}]}', None),
    ],
)
def test_non_finite_numbers_and_lone_surrogates_get_422_naming_the_field(
    client: LocalTestClient, path: str, raw: str, location: list | None
) -> None:
    response = client.post(path, content=raw.encode(), headers=JSON)
    assert response.status_code == 422, response.text
    json.dumps(response.json(), allow_nan=False).encode("utf-8")  # strict JSON, valid UTF-8
    if location is not None:
        assert location in locations(response)


def test_the_echoed_input_is_an_excerpt_whatever_the_body_size(client: LocalTestClient) -> None:
    body = json.dumps({"documents": ["x" * 1_900_000]})  # no query: the whole body is "the input"
    response = client.post("/v1/rerank", content=body, headers=JSON)
    assert response.status_code == 422
    assert ["body", "query"] in locations(response)
    assert len(response.content) < 2_000


def test_thousands_of_errors_are_listed_up_to_a_bound(client: LocalTestClient) -> None:
    response = client.post("/v1/rerank", json={"query": "q", "documents": [1] * 5_000})
    body = response.json()
    assert response.status_code == 422
    assert len(body["detail"]) == MAX_ERRORS
    assert body["omitted_errors"] == 2 * 5_000 - MAX_ERRORS  # each item fails as str and as object
    assert len(response.content) < 20_000


def test_a_list_over_its_hard_cap_is_one_error_before_any_item_is_validated(client: LocalTestClient) -> None:
    # Issue 20, finding 2: 500,000 invalid items built 500,000 errors on the event loop (41 s).
    response = client.post("/v1/rerank", json={"query": "q", "documents": [1] * 500_000})
    body = response.json()
    assert response.status_code == 422
    assert [error["type"] for error in body["detail"]] == ["too_long"]
    assert "omitted_errors" not in body


def test_error_bodies_carry_the_request_id_of_the_response_header(client: LocalTestClient) -> None:
    response = client.post("/v1/rerank", json={"query": "q"})
    assert response.status_code == 422
    assert response.json()["request_id"] == response.headers["x-request-id"]


def test_malformed_json_is_422_not_500(client: LocalTestClient) -> None:
    response = client.post("/v1/rerank", content=b'{"query": "q", "documents": [', headers=JSON)
    assert response.status_code == 422


def test_excerpt_keeps_small_values_and_cuts_large_ones() -> None:
    assert excerpt({"query": "q"}) == {"query": "q"}
    assert excerpt(float("nan")) == "nan"
    assert excerpt("a\ud800") == "a\\ud800"
    long = excerpt("y" * 10_000)
    assert long.startswith("y" * MAX_INPUT_CHARS) and len(long) < MAX_INPUT_CHARS + 40
