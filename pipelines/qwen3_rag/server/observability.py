"""What the operator sees: Prometheus metrics, log records with the request id, redaction.

Metrics: request counts and latencies come from prometheus-fastapi-instrumentator, labelled by
route template; unknown paths fold into ``unmatched`` and unknown methods into ``other``, so
made-up paths and method names cannot grow ``/metrics`` (one series each grew it from 16 KB to
4.9 MB). Model-call latency and batch sizes come from wrapping the scoring function handed to the
batcher; queue depth and counters are read at scrape time. Each app has its own registry, so
several apps in one process never collide.

Logs and redaction (hand-written: no library masks secrets in every handler's records): a
`logging.Filter` on the handlers passes each record through `redact` and appends
``[request_id=...]`` (asgi-correlation-id's id) to records written while a request is served.
`redact` is applied wherever text leaves the process: error bodies, ``/readyz``, log records.

Example:
    >>> redact("cannot reach http://elastic:hunter2@es:9200/_search?api_key=abc")
    'cannot reach http://***@es:9200/_search?api_key=***'
"""

from __future__ import annotations

import copy
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from asgi_correlation_id import correlation_id
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_fastapi_instrumentator import Instrumentator
from prometheus_fastapi_instrumentator.metrics import Info

if TYPE_CHECKING:
    from .state import ServerState

PREFIX = "qwen3_rerank"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


# --- Metrics ------------------------------------------------------------------------------------


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

    def instrument(self, app: FastAPI) -> None:
        """Count and time every response (a middleware) and serve ``GET /metrics``."""
        instrumentator = Instrumentator(
            should_group_status_codes=False, should_group_untemplated=True, registry=self.registry
        )
        instrumentator.add(self._record).instrument(app).expose(app, include_in_schema=False)

    def _record(self, info: Info) -> None:
        route = "unmatched" if info.modified_handler == "none" else info.modified_handler
        method = info.method if info.method in KNOWN_METHODS else "other"
        self.requests.labels(route, method, info.modified_status).inc()
        self.request_seconds.labels(route).observe(info.modified_duration)

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


# --- Redaction ----------------------------------------------------------------------------------

MASK = "***"
# Each pattern starts a name only where the character before cannot continue it (a look-behind,
# not ``\b``): with ``\b`` a name of ``a-a-a-...`` could start at every ``a``, and each start
# scanned to the end of the name, so 2,000 such characters cost 0.35 s (quadratic), on the event
# loop. Now every character is scanned a bounded number of times (benchmarks/redaction.py).
# scheme://userinfo@ : the whole userinfo goes, since a lone user part is often a token.
_URL_USERINFO = re.compile(r"(?P<scheme>(?<![a-zA-Z0-9+.-])[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@'\"<>]+@")
# key=value, key: value, "key": "value" for names that hold secrets.
_SECRET_NAMES = r"(?:[a-z0-9_-]*(?:password|passwd|secret|token|api[_-]?key|apikey|credentials?))"
_KEY_VALUE = re.compile(
    rf"(?P<key>[\"']?(?<![a-z0-9_-]){_SECRET_NAMES}[\"']?\s*[:=]\s*)"
    rf"(?P<value>\"[^\"]*\"|'[^']*'|[^\"'\s,&;}})\]]+)",
    re.IGNORECASE,
)
# Authorization header values: "Bearer abc", "Basic dXNlcjpwdw==", "ApiKey abc".
_AUTH_SCHEME = re.compile(r"\b(?P<scheme>Bearer|Basic|ApiKey)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
# Environment variables whose values are secrets, whatever text they end up in.
_SECRET_ENV = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|APIKEY|CREDENTIAL", re.IGNORECASE)
_MIN_SECRET_CHARS = 4  # shorter values would mask ordinary words
# An absolute local path (``/home/me/models/x``, ``C:\\models\\x``): shown by its last part only.
_LOCAL_PATH = re.compile(r"(?<![\w:/.])(?:/[^\s/'\"<>:,;()]+)+/(?P<last>[^\s/'\"<>:,;()]+)|[A-Za-z]:\\\S+")


def secret_values(environ: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> list[str]:
    """Values that must never be shown: secret-named environment variables plus ``extra``."""
    environ = os.environ if environ is None else environ
    values = [value for name, value in environ.items() if _SECRET_ENV.search(name)]
    values.extend(extra)
    # Longest first, so a secret that contains another is masked whole.
    return sorted({v for v in values if len(v) >= _MIN_SECRET_CHARS}, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` with URL credentials, secret-named parameters, Authorization values and known
    secret values (``secrets``; default: secret-named environment variables) replaced by ``***``."""
    for value in secret_values() if secrets is None else secrets:
        text = text.replace(value, MASK)
    text = _URL_USERINFO.sub(rf"\g<scheme>{MASK}@", text)
    text = _KEY_VALUE.sub(rf"\g<key>{MASK}", text)
    return _AUTH_SCHEME.sub(rf"\g<scheme> {MASK}", text)


def redact_json(value: Any, secrets: Iterable[str] | None = None) -> Any:
    """`redact` applied to every string inside a JSON-like value (dicts, lists, strings)."""
    secrets = secret_values() if secrets is None else list(secrets)
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, Mapping):
        return {key: redact_json(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_json(item, secrets) for item in value]
    return value


def hide_paths(text: str) -> str:
    """``text`` with absolute local paths cut to ``…/last-part``: for responses anyone may read."""
    return _LOCAL_PATH.sub(lambda match: f"…/{match.group('last') or '…'}", text)


# --- Logs ---------------------------------------------------------------------------------------

UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
ACCESS_LOGGER = "uvicorn.access"


class RedactingFilter(logging.Filter):
    """Masks ``secrets`` (and credential patterns) in each record; adds ``record.request_id``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = list(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "qwen3_redacted", False):  # several handlers may share one record
            return True
        record.qwen3_redacted = True
        request_id = correlation_id.get()
        # The id is redacted too (the edge replaces one holding a secret; this is the second lock).
        record.request_id = redact(request_id or "-", self.secrets)
        if isinstance(record.msg, str):
            if request_id is not None and record.name != ACCESS_LOGGER:
                record.msg = f"{record.msg} [request_id={request_id}]"
            record.msg = redact(record.msg, self.secrets)
        if isinstance(record.args, tuple):
            record.args = tuple(self._redact_value(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: self._redact_value(value) for key, value in record.args.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info), self.secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        return True

    def _redact_value(self, value: Any) -> Any:
        """``value`` unchanged unless its text holds a secret (then the redacted text)."""
        if value is None or isinstance(value, bool | int | float):
            return value
        text = str(value)
        redacted = redact(text, self.secrets)
        return value if redacted == text else redacted


def _handlers() -> set[logging.Handler]:
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in UVICORN_LOGGERS)]
    handlers = {handler for logger in loggers for handler in logger.handlers}
    if logging.lastResort is not None:  # what writes warnings when the root has no handler
        handlers.add(logging.lastResort)
    return handlers


def install_log_filter(secrets: Iterable[str]) -> list[logging.Handler]:
    """Make every root and uvicorn handler redact ``secrets``; returns the handlers newly given
    a filter, for `remove_log_filter` (a filter already there learns the secrets and stays)."""
    secrets = list(secrets)
    added = []
    for handler in _handlers():
        existing = [f for f in handler.filters if isinstance(f, RedactingFilter)]
        for log_filter in existing:
            log_filter.secrets = sorted({*log_filter.secrets, *secrets}, key=len, reverse=True)
        if not existing:
            handler.addFilter(RedactingFilter(secrets))
            added.append(handler)
    return added


def remove_log_filter(handlers: Iterable[logging.Handler]) -> None:
    """Detach the filters `install_log_filter` added to ``handlers`` (at shutdown)."""
    for handler in handlers:
        for log_filter in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(log_filter)


def uvicorn_log_config(secrets: Iterable[str]) -> dict[str, Any]:
    """uvicorn's logging configuration with redaction on every handler, the request id on the
    access line, and the root logger (this package, the Elasticsearch client) written too."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact": {"()": RedactingFilter, "secrets": list(secrets)}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact"]
    access = config["formatters"]["access"]
    access["fmt"] = f"{access['fmt']} [request_id=%(request_id)s]"
    # Warnings from any library, and this project's own info lines, not every client's chatter.
    config["root"] = {"handlers": ["default"], "level": "WARNING"}
    for name in ("qwen3_rag", "qwen3_rerank"):
        config["loggers"][name] = {"level": "INFO"}
    return config
