"""Prometheus metrics on ``GET /metrics``: traffic, queues, batches, latency, refusals.

Each app has its own `CollectorRegistry`, so several apps in one process (tests, a host that
mounts this app) never collide. Request counts and latencies come from an ASGI middleware that
labels by route template (``/v1/rerank``, not the raw path, so labels stay few); model-call
latency and batch sizes come from wrapping the scoring function handed to the batcher; queue
depth and the batcher's counters are read when Prometheus scrapes, so nothing is counted twice.
Metric names follow Text Embeddings Inference's where one exists (``te_queue_size`` there).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from .state import ServerState

PREFIX = "qwen3_rerank"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)


class ServerMetrics:
    """The metrics of one app, and the pieces that feed them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            f"{PREFIX}_http_requests",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "Time from request to the end of the response, by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.model_call_seconds = Histogram(
            f"{PREFIX}_model_call_duration_seconds",
            "Time of one batched model call (score_prepared).",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_pairs = Histogram(
            f"{PREFIX}_batch_size",
            "(query, document) pairs scored in one model call.",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self._state: ServerState | None = None
        self.registry.register(_StateCollector(lambda: self._state))

    def watch(self, state: ServerState | None) -> None:
        """Read queue depth and counters from ``state`` at each scrape (``None`` while stopped)."""
        self._state = state

    def timed(self, score_prepared: Callable[..., Any]) -> Callable[..., Any]:
        """``score_prepared`` that records its duration and the (query, document) pairs of each call."""

        def timed_score_prepared(requests: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return score_prepared(requests, *args, **kwargs)
            finally:
                self.model_call_seconds.observe(time.perf_counter() - started)
                self.batch_pairs.observe(sum(request.documents for request in requests))

        return timed_score_prepared

    async def endpoint(self, request: Request) -> Response:
        """``GET /metrics`` in Prometheus' text format."""
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class _StateCollector(Collector):
    """Gauges and counters read from the running batcher and pipeline pools at scrape time."""

    def __init__(self, get_state: Callable[[], ServerState | None]) -> None:
        self._get_state = get_state

    def collect(self) -> Iterator[Metric]:
        state = self._get_state()
        if state is None:
            return
        batcher = state.batcher
        yield _gauge("queue_requests", "Rerank requests waiting for the model.", batcher.pending)
        yield _gauge("queue_tokens", "Prompt tokens waiting for the model.", batcher.queued_tokens)
        stats = batcher.stats
        yield _counter("rerank_rejected", "Rerank requests refused with 429: queue full.", stats.rejected)
        yield _counter("rerank_cancelled", "Rerank requests whose client left first.", stats.cancelled)
        yield _counter("model_calls", "Batched model calls made.", stats.batches)
        busy = GaugeMetricFamily(f"{PREFIX}_pipeline_busy", "Pipeline calls running.", labels=["pool"])
        rejected = CounterMetricFamily(
            f"{PREFIX}_pipeline_rejected", "Pipeline calls refused with 429: pool busy.", labels=["pool"]
        )
        timed_out = CounterMetricFamily(
            f"{PREFIX}_pipeline_timed_out", "Pipeline calls answered 504: deadline passed.", labels=["pool"]
        )
        for pool in (state.ask_pool, state.documents_pool):
            busy.add_metric([pool.name], pool.busy)
            rejected.add_metric([pool.name], pool.rejected)
            timed_out.add_metric([pool.name], pool.timed_out)
        yield from (busy, rejected, timed_out)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", documentation, value=value)


class MetricsMiddleware:
    """ASGI middleware: counts every response by route template and status, and times it."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.request_seconds.labels(route).observe(time.perf_counter() - started)
