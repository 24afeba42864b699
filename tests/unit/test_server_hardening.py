"""The second hardening round (issue 20): each finding tried as an attacker or a careless client
would, against the app with a tiny model (and, for connection-level findings, under uvicorn)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qwen3_rag.server import ServerSettings, create_app
from qwen3_rag.server.cli import uvicorn_options
from qwen3_rerank import Qwen3Reranker
from tests.polling import eventually, wait_until
from tests.server_client import LocalTestClient, post_scope
from tests.server_fakes import FakeAnswer, FakePassage, FakePipeline

RERANK = {"query": "q", "documents": ["a", "b"]}


@pytest.fixture(scope="module")
def reranker(tiny_qwen3_dir: Path) -> Iterator[Qwen3Reranker]:
    with Qwen3Reranker(str(tiny_qwen3_dir), device="cpu") as reranker:
        yield reranker


class ReroutedPipeline(FakePipeline):
    """Reranks ``passages`` four at a time with the reranker the server hands its pipeline (a
    `QueuedReranker`: its scoring goes through the server's queue, as `RagService`'s framework
    ranker's does); counts the passages scored."""

    def __init__(self, passages: int) -> None:
        super().__init__()
        self.passages = [f"passage {index} about nothing in particular" for index in range(passages)]
        self.scored = 0
        self.finished = threading.Event()
        self.reranker: Qwen3Reranker | None = None

    def ask(self, question: str, *, candidates: int | None = None, top_n: int | None = None) -> FakeAnswer:
        assert self.reranker is not None, "the server built this pipeline with its reranker"
        try:
            for start in range(0, len(self.passages), 4):
                self.scored += len(self.reranker.score(question, self.passages[start : start + 4]))
        finally:
            self.finished.set()
        return FakeAnswer("See [1].", [FakePassage(1, "p1", self.passages[0], "s", 0.5)])

    def close(self) -> None:
        if self.reranker is not None:
            self.reranker.close()


def rag_app(reranker: Qwen3Reranker, pipeline: FakePipeline, **settings: Any) -> Any:
    def factory(settings: ServerSettings, queued: Qwen3Reranker) -> FakePipeline:
        if isinstance(pipeline, ReroutedPipeline):
            pipeline.reranker = queued.share()  # its own handle, as RagService opens one
        return pipeline

    return create_app(ServerSettings(rag="on", **settings), reranker=reranker, rag_factory=factory)


# --- 1. /v1/ask: bounded question, work that stops with its deadline or its client ---------------


def test_a_long_question_is_refused_before_any_work(reranker: Qwen3Reranker) -> None:
    pipeline = FakePipeline()
    with LocalTestClient(rag_app(reranker, pipeline, max_question_tokens=8)) as client:
        by_chars = client.post("/v1/ask", json={"question": "x" * 100_000, "candidates": 1000})
        by_tokens = client.post("/v1/ask", json={"question": "what " * 40})
    for response in (by_chars, by_tokens):
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["body", "question"]
    assert "characters" in by_chars.text and "tokens" in by_tokens.text
    assert pipeline.calls == 0, "refused before the pipeline saw it"


async def test_an_abandoned_ask_frees_its_worker_within_one_rerank_batch(reranker: Qwen3Reranker) -> None:
    pipeline = ReroutedPipeline(passages=4000)
    app = rag_app(reranker, pipeline, ask_concurrency=1, batch_documents=4)
    body = b'{"question": "q"}'
    leave = asyncio.Event()

    async def receive() -> dict:
        if body_sent.is_set():
            await leave.wait()
            return {"type": "http.disconnect"}
        body_sent.set()
        return {"type": "http.request", "body": body, "more_body": False}

    body_sent = asyncio.Event()
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    async with app.router.lifespan_context(app):
        call = asyncio.create_task(app(post_scope("/v1/ask", body), receive, send))
        # A failed ask must fail the test, not hang it: it ends the wait, then the assertion fails.
        await eventually(lambda: pipeline.scored >= 8 or call.done(), "the ask to score 8 batches")
        assert not call.done(), sent
        leave.set()
        await asyncio.wait_for(call, 60)
        finished = await asyncio.to_thread(pipeline.finished.wait, 60)
        scored_when_left = pipeline.scored
        state = app.state.qwen3
        busy = state.ask_pool.busy
    assert finished and busy == 0, "the worker came free"
    assert scored_when_left < len(pipeline.passages) // 2, scored_when_left


def test_an_ask_past_its_deadline_stops_its_rerank(reranker: Qwen3Reranker) -> None:
    pipeline = ReroutedPipeline(passages=20_000)
    app = rag_app(reranker, pipeline, pipeline_timeout_s=0.3, batch_documents=4)
    with LocalTestClient(app) as client:
        response = client.post("/v1/ask", json={"question": "q"})
        assert pipeline.finished.wait(60), "the abandoned call ended"
        # Its slot frees on the event loop's thread, just after.
        wait_until(lambda: app.state.qwen3.ask_pool.busy == 0, "the abandoned call's slot to free")
    assert response.status_code == 504
    assert pipeline.scored < len(pipeline.passages)


# --- 2. many invalid items -------------------------------------------------------------------------


def test_500000_invalid_items_get_one_error_and_the_server_stays_responsive(reranker: Qwen3Reranker) -> None:
    body = b'{"query": "q", "documents": [' + b",".join([b"1"] * 500_000) + b"]}"
    with LocalTestClient(create_app(ServerSettings(rag="off"), reranker=reranker)) as client:
        response = client.post("/v1/rerank", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert [error["type"] for error in response.json()["detail"]] == ["too_long"]


# --- 3. slowloris ----------------------------------------------------------------------------------


@contextlib.contextmanager
def uvicorn_server(reranker: Qwen3Reranker, settings: ServerSettings) -> Iterator[tuple[int, Any]]:
    """The port of a uvicorn server of the app, and its h11 protocol class (which counts the
    connections waiting for a head, per client address)."""
    import uvicorn

    options = {k: v for k, v in uvicorn_options(settings).items() if k not in ("host", "port")}
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    app = create_app(settings, reranker=reranker)
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", **options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, "uvicorn to start")
        yield sock.getsockname()[1], options["http"]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def half_sent_heads(port: int, count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        with contextlib.suppress(OSError):
            attacker = socket.create_connection(("127.0.0.1", port), timeout=2)
            attacker.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
            sockets.append(attacker)
    return sockets


def healthz_from(address: str, port: int) -> int:
    """``GET /healthz`` from another loopback address, i.e. another client."""
    client = socket.socket()
    client.settimeout(5)
    client.bind((address, 0))
    client.connect(("127.0.0.1", port))
    try:
        client.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        return int(client.recv(64).split(b" ")[1])
    finally:
        client.close()


def test_300_unfinished_heads_from_one_client_leave_room_for_others(reranker: Qwen3Reranker) -> None:
    settings = ServerSettings(rag="off", limit_concurrency=256, header_timeout_s=30)
    with uvicorn_server(reranker, settings) as (port, protocol):
        attackers = half_sent_heads(port, 300)
        try:
            cap = settings.max_waiting_per_client
            wait_until(lambda: protocol.waiting["127.0.0.1"] >= cap, "the attacker to fill its cap")
            status = healthz_from("127.0.0.2", port)
        finally:
            for attacker in attackers:
                attacker.close()
    assert status == 200


# --- 4. /metrics with made-up methods and paths ---------------------------------------------------


def test_metrics_labels_stay_bounded_under_made_up_methods_and_paths(reranker: Qwen3Reranker) -> None:
    with LocalTestClient(create_app(ServerSettings(rag="off"), reranker=reranker)) as client:
        before = len(client.get("/metrics").text)
        for index in range(50):
            client.request(f"M{index}" + "X" * 2000, f"/made/up/{index}")
        text = client.get("/metrics").text
    assert 'method="other"' in text and "XXXX" not in text and "/made/up" not in text
    assert len(text) < before + 10_000


# --- 6. strict types ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        ("/v1/rerank", "top_n", True),
        ("/v1/rerank", "top_n", "1"),
        ("/v1/rerank", "max_tokens_per_doc", True),
        ("/v1/rerank", "return_documents", "yes"),
        ("/v1/ask", "candidates", True),
        ("/v1/ask", "top_n", "2"),
    ],
)
def test_a_bool_or_a_string_is_not_an_int_nor_a_string_a_bool(
    reranker: Qwen3Reranker, path: str, field: str, value: object
) -> None:
    body = {**RERANK} if path == "/v1/rerank" else {"question": "q"}
    with LocalTestClient(rag_app(reranker, FakePipeline())) as client:
        response = client.post(path, json={**body, field: value})
    assert response.status_code == 422, response.text
    assert ["body", field] in [error["loc"] for error in response.json()["detail"]]


# --- 7. smaller edges -----------------------------------------------------------------------------


def test_a_large_request_head_is_refused_however_it_arrives(reranker: Qwen3Reranker) -> None:
    with LocalTestClient(create_app(ServerSettings(rag="off"), reranker=reranker)) as client:
        response = client.post("/v1/rerank", json=RERANK, headers={"X-Pad": "a" * 20_000})
    assert response.status_code == 431
    assert "16384" in response.json()["detail"]


def test_a_98_kb_head_in_one_write_is_refused_under_uvicorn(reranker: Qwen3Reranker) -> None:
    with uvicorn_server(reranker, ServerSettings(rag="off")) as (port, _):
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        head = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Pad: " + b"a" * 98_000 + b"\r\n\r\n"
        client.sendall(head)
        answer = client.recv(64)
        client.close()
    assert not answer.startswith(b"HTTP/1.1 200"), answer


def test_the_page_sends_security_headers(reranker: Qwen3Reranker) -> None:
    with LocalTestClient(create_app(ServerSettings(rag="off"), reranker=reranker)) as client:
        headers = client.get("/").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"


def test_readyz_shows_no_local_path(reranker: Qwen3Reranker, tiny_qwen3_dir: Path) -> None:
    def broken(settings: ServerSettings, reranker: Qwen3Reranker) -> Any:
        raise FileNotFoundError(f"no index in {tiny_qwen3_dir}/store/index.json")

    app = create_app(ServerSettings(rag="auto"), reranker=reranker, rag_factory=broken)
    with LocalTestClient(app) as client:
        response = client.get("/readyz")
    assert str(tiny_qwen3_dir) not in response.text
    assert response.json()["model"] == tiny_qwen3_dir.name
    assert "index.json" in response.json()["rag"], "the reason is still said"
