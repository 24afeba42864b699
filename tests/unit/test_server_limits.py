"""Server limits (issue 13, defect 5): ``/v1/ask`` has its own bounded pool (429 with
``Retry-After`` when full, 504 past its deadline), ``/readyz`` answers in well under a second while
the document store hangs, and slow clients lose their connection (head and body deadlines)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from starlette.responses import JSONResponse

from qwen3_rag.server import ServerSettings, create_app
from qwen3_rag.server.cli import uvicorn_options
from qwen3_rag.server.edge import RequestGate
from qwen3_rag.server.queue import BoundedPool, PoolFull, PoolTimeout, Probe
from qwen3_rerank import Qwen3Reranker
from tests.polling import eventually, wait_until
from tests.server_client import post_scope
from tests.server_fakes import FakePipeline


@pytest.fixture(scope="module")
def reranker(tiny_qwen3_dir: Path) -> Iterator[Qwen3Reranker]:
    with Qwen3Reranker(str(tiny_qwen3_dir), device="cpu") as reranker:
        yield reranker


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost", timeout=30) as client:
            yield client


def frozen_app(
    reranker: Qwen3Reranker, gate: threading.Event, **settings: object
) -> tuple[FastAPI, FakePipeline]:
    """An app whose document store hangs until ``gate`` is set, as a frozen Elasticsearch does, and
    that store (its ``calls`` count the calls that reached it)."""
    pipeline = FakePipeline(gate=gate)
    server = ServerSettings(rag="on", allow_writes=True, **settings)
    return create_app(server, reranker=reranker, rag_factory=lambda s, r: pipeline), pipeline


async def store_calls(pipeline: FakePipeline, count: int) -> None:
    """Until ``count`` calls are inside the hung store."""
    await eventually(lambda: pipeline.calls >= count, f"{count} calls to reach the store")


async def test_readyz_answers_fast_while_the_store_hangs_and_asks_wait_on_it(reranker: Qwen3Reranker) -> None:
    gate = threading.Event()
    app, pipeline = frozen_app(
        reranker, gate, ask_concurrency=2, readiness_timeout_s=0.1, pipeline_timeout_s=60
    )
    try:
        async with running(app) as client:
            asks = [asyncio.create_task(client.post("/v1/ask", json={"question": "q"})) for _ in range(2)]
            await store_calls(pipeline, 2)
            for _ in range(3):
                ready = await client.get("/readyz")
                assert ready.status_code == 503
                assert "no answer within 0.1 s" in ready.json()["rag"]
            pings = pipeline.calls - 2  # later checks join the hung ping instead of queueing behind it
            rerank = await client.post("/v1/rerank", json={"query": "q", "documents": ["d"]})
            gate.set()
            answers = await asyncio.gather(*asks)
    finally:
        gate.set()
    assert pings == 1
    assert rerank.status_code == 200, "reranking never waits on the store"
    assert [a.status_code for a in answers] == [200, 200]


async def test_a_full_ask_pool_answers_429_with_retry_after(reranker: Qwen3Reranker) -> None:
    gate = threading.Event()
    app, pipeline = frozen_app(reranker, gate, ask_concurrency=2, retry_after_seconds=3)
    try:
        async with running(app) as client:
            running_asks = [
                asyncio.create_task(client.post("/v1/ask", json={"question": "q"})) for _ in range(2)
            ]
            await store_calls(pipeline, 2)
            refused = await client.post("/v1/ask", json={"question": "q"})
            gate.set()
            done = await asyncio.gather(*running_asks)
            after = await client.post("/v1/ask", json={"question": "q"})
    finally:
        gate.set()
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "3"
    assert [r.status_code for r in done] == [200, 200] and after.status_code == 200


async def test_an_ask_past_its_deadline_is_504_and_keeps_its_slot_until_the_store_returns(
    reranker: Qwen3Reranker,
) -> None:
    gate = threading.Event()
    app, _ = frozen_app(reranker, gate, ask_concurrency=1, pipeline_timeout_s=0.2)
    try:
        async with running(app) as client:
            late = await client.post("/v1/ask", json={"question": "q"})
            while_hung = await client.post("/v1/ask", json={"question": "q"})
            gate.set()
            pool = app.state.qwen3.ask_pool
            await eventually(lambda: pool.busy == 0, "the hung call to give its slot back")
            after = await client.post("/v1/ask", json={"question": "q"})
    finally:
        gate.set()
    assert late.status_code == 504 and "0.2 s" in late.json()["detail"]
    assert while_hung.status_code == 429, "a hung call still holds its thread: no pile-up"
    assert after.status_code == 200


async def test_documents_have_a_pool_of_their_own(reranker: Qwen3Reranker) -> None:
    gate = threading.Event()
    app, pipeline = frozen_app(reranker, gate, ask_concurrency=1)
    body = {"documents": [{"text": "t", "source": "s"}]}
    try:
        async with running(app) as client:
            first = asyncio.create_task(client.post("/v1/documents", json=body))
            await store_calls(pipeline, 1)
            second = await client.post("/v1/documents", json=body)
            gate.set()
            assert (await first).status_code == 200
    finally:
        gate.set()
    assert second.status_code == 429


async def test_bounded_pool_and_probe_directly() -> None:
    release = threading.Event()
    pool = BoundedPool("test", workers=1, timeout_s=0.1)
    probe = Probe(timeout_s=0.1)
    try:
        with pytest.raises(PoolTimeout):
            await pool.run(release.wait, 5)
        with pytest.raises(PoolFull):
            await pool.run(lambda: None)
        with pytest.raises(TimeoutError):
            await probe.check(lambda: release.wait(5))
        release.set()
        await eventually(lambda: pool.busy == 0, "the timed-out call to give its slot back")
        assert await pool.run(lambda: 7) == 7 and pool.busy == 0
        await probe.check(lambda: None)
    finally:
        release.set()
        pool.close()
        probe.close()


async def test_a_body_that_never_arrives_is_408(reranker: Qwen3Reranker) -> None:
    app = create_app(ServerSettings(rag="off", body_timeout_s=0.2), reranker=reranker)
    sent: list[dict] = []
    first = json.dumps({"query": "q", "documents": ["d"]}).encode()[:10]
    messages = [{"type": "http.request", "body": first, "more_body": True}]

    async def receive() -> dict:
        if messages:
            return messages.pop()
        await asyncio.sleep(3600)  # the rest of the body never comes
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = post_scope("/v1/rerank")
    async with app.router.lifespan_context(app):
        await asyncio.wait_for(app(scope, receive, send), 60)
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 408


async def test_the_body_deadline_ends_with_the_body() -> None:
    # A handler that then waits on receive (for a disconnect, as a streaming response does) is
    # not cut off: only the body is timed.
    async def handler(scope: dict, receive: Callable, send: Callable) -> None:
        await receive()
        after_body = await receive()
        await JSONResponse({"then": after_body["type"]})(scope, receive, send)

    messages = [{"type": "http.disconnect"}, {"type": "http.request", "body": b"{}", "more_body": False}]

    async def receive() -> dict:
        message = messages.pop()
        if message["type"] == "http.disconnect":
            await asyncio.sleep(0.3)  # three deadlines later
        return message

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    limits = RequestGate(handler, ServerSettings(max_request_bytes=1024, body_timeout_s=0.1))
    await asyncio.wait_for(limits(post_scope("/v1/rerank", b"{}"), receive, send), 60)
    assert sent[0]["status"] == 200
    assert json.loads(sent[1]["body"]) == {"then": "http.disconnect"}


def test_uvicorn_gets_the_connection_limits() -> None:
    options = uvicorn_options(
        ServerSettings(
            limit_concurrency=32, timeout_keep_alive_s=3, max_header_bytes=8192, header_timeout_s=2
        )
    )
    assert options["limit_concurrency"] == 32
    assert options["timeout_keep_alive"] == 3
    assert options["h11_max_incomplete_event_size"] == 8192
    assert options["http"].header_timeout_s == 2


def test_a_client_that_trickles_its_headers_is_disconnected(reranker: Qwen3Reranker) -> None:
    import uvicorn

    # A keep-alive far past the client's wait: only the header deadline can hang up in time.
    settings = ServerSettings(rag="off", header_timeout_s=0.5, timeout_keep_alive_s=600)
    options = {k: v for k, v in uvicorn_options(settings).items() if k not in ("host", "port")}
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, reranker=reranker), log_level="warning", **options)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, "uvicorn to start")
        # The header deadline is 0.5 s; the client waits up to 60 s, far longer than it.
        slow = socket.create_connection(sock.getsockname(), timeout=60)
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")  # never finishes its headers
        closed = slow.recv(1) == b""  # socket.timeout (a failure) if the server never hangs up
        slow.close()
        with httpx.Client(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}") as client:
            healthy = client.get("/healthz", headers={"Host": "localhost"})
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
    assert closed
    assert healthy.status_code == 200, "a prompt client is served as usual"
