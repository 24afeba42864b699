"""``GET /metrics`` (Prometheus) and the request id in responses, error bodies and logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from qwen3_rag.server import ServerSettings, create_app
from qwen3_rerank import Qwen3Reranker
from tests.server_client import LocalTestClient
from tests.server_fakes import FakePipeline

RERANK = {"query": "q", "documents": ["a", "b", "c"]}


@pytest.fixture(scope="module")
def reranker(tiny_qwen3_dir: Path) -> Iterator[Qwen3Reranker]:
    with Qwen3Reranker(str(tiny_qwen3_dir), device="cpu") as reranker:
        yield reranker


def samples(client: LocalTestClient) -> dict[tuple[str, tuple], float]:
    """Every sample of ``/metrics`` as ``{(name, sorted labels): value}``."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_requests_are_counted_by_route_template_and_status(reranker: Qwen3Reranker) -> None:
    with LocalTestClient(create_app(ServerSettings(rag="off"), reranker=reranker)) as client:
        for _ in range(2):
            assert client.post("/v1/rerank", json=RERANK).status_code == 200
        assert client.post("/v2/rerank", json={"query": "q"}).status_code == 422
        assert client.get("/no/such/page").status_code == 404
        metrics = samples(client)
    ok = ("route", "/v1/rerank"), ("method", "POST"), ("status", "200")
    assert metrics[("qwen3_rerank_http_requests_total", tuple(sorted(ok)))] == 2
    invalid = ("route", "/v2/rerank"), ("method", "POST"), ("status", "422")
    assert metrics[("qwen3_rerank_http_requests_total", tuple(sorted(invalid)))] == 1
    unmatched = ("route", "unmatched"), ("method", "GET"), ("status", "404")
    assert metrics[("qwen3_rerank_http_requests_total", tuple(sorted(unmatched)))] == 1
    assert metrics[("qwen3_rerank_http_request_duration_seconds_count", (("route", "/v1/rerank"),))] == 2


def test_model_calls_batch_sizes_queue_and_refusals_are_exposed(reranker: Qwen3Reranker) -> None:
    with LocalTestClient(create_app(ServerSettings(rag="off"), reranker=reranker)) as client:
        client.post("/v1/rerank", json=RERANK)
        client.post("/v1/rerank", json={"query": "q", "documents": ["a"]})
        metrics = samples(client)
    assert metrics[("qwen3_rerank_model_call_duration_seconds_count", ())] == 2
    assert metrics[("qwen3_rerank_batch_size_sum", ())] == 4  # 3 + 1 pairs
    assert metrics[("qwen3_rerank_model_calls_total", ())] == 2
    assert metrics[("qwen3_rerank_queue_requests", ())] == 0
    assert metrics[("qwen3_rerank_rerank_rejected_total", ())] == 0
    assert metrics[("qwen3_rerank_rerank_cancelled_total", ())] == 0
    assert metrics[("qwen3_rerank_pipeline_rejected_total", (("pool", "ask"),))] == 0


def test_pipeline_refusals_are_counted(reranker: Qwen3Reranker) -> None:
    app = create_app(ServerSettings(rag="on"), reranker=reranker, rag_factory=lambda s, r: FakePipeline())
    with LocalTestClient(app) as client:
        client.app.state.qwen3.ask_pool.busy = client.app.state.qwen3.ask_pool.workers  # all threads taken
        refused = client.post("/v1/ask", json={"question": "q"})
        client.app.state.qwen3.ask_pool.busy = 0
        metrics = samples(client)
    assert refused.status_code == 429
    assert metrics[("qwen3_rerank_pipeline_rejected_total", (("pool", "ask"),))] == 1


def test_metrics_stay_open_when_api_keys_are_set(reranker: Qwen3Reranker) -> None:
    app = create_app(ServerSettings(rag="off", api_keys=("k-123456",)), reranker=reranker)
    with LocalTestClient(app) as client:
        client.post("/v1/rerank", json=RERANK)
        metrics = samples(client)
    refused = ("route", "/v1/rerank"), ("method", "POST"), ("status", "401")
    assert metrics[("qwen3_rerank_http_requests_total", tuple(sorted(refused)))] == 1


def test_a_valid_request_id_is_honoured_and_others_are_replaced(reranker: Qwen3Reranker) -> None:
    with LocalTestClient(create_app(ServerSettings(rag="off"), reranker=reranker)) as client:
        honoured = client.post("/v1/rerank", json=RERANK, headers={"X-Request-ID": "trace-42.a"})
        forged = client.post("/v1/rerank", json=RERANK, headers={"X-Request-ID": "x" * 500})
        generated = client.get("/healthz")
    assert honoured.headers["x-request-id"] == "trace-42.a"
    assert len(forged.headers["x-request-id"]) == 32
    assert len(generated.headers["x-request-id"]) == 32
    assert generated.headers["x-request-id"] != forged.headers["x-request-id"]


def test_a_server_error_logs_and_returns_the_request_id(
    reranker: Qwen3Reranker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(requests: list) -> list[list[float]]:
        raise RuntimeError("the device fell over")

    monkeypatch.setattr(reranker, "score_prepared", broken)
    app = create_app(ServerSettings(rag="off"), reranker=reranker)
    with caplog.at_level(logging.ERROR), LocalTestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/v1/rerank", json=RERANK, headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.json()["request_id"] == "req-500"
    assert "the device fell over" not in response.text, "internals stay in the log"
    assert "[request_id=req-500]" in caplog.text and "the device fell over" in caplog.text


def test_uvicorn_access_lines_carry_the_request_id_and_no_secret() -> None:
    import logging.config

    from asgi_correlation_id import correlation_id

    from qwen3_rag.server.observability import uvicorn_log_config

    config = uvicorn_log_config(["hunter22"])
    formatter = logging.config.DictConfigurator(config).configure_custom(dict(config["formatters"]["access"]))
    log_filter = config["filters"]["redact"]["()"](secrets=config["filters"]["redact"]["secrets"])
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/readyz?token=hunter22", "1.1", 200), None,
    )  # fmt: skip
    token = correlation_id.set("req-7")
    try:
        log_filter.filter(record)
    finally:
        correlation_id.reset(token)
    line = formatter.format(record)
    assert "[request_id=req-7]" in line and "200" in line
    assert "hunter22" not in line and "/readyz?token=***" in line
