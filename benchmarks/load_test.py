"""Load test for ``POST /v1/rerank``: requests per second and p50/p99 latency at several
concurrency levels, how many requests the micro-batcher coalesced per model call, the share of
429s when many large requests arrive at once, and isolation (innocent requests sent alongside
poisoned ones must all succeed).

Against a running server (loopback only, so a typo cannot load-test someone else's machine):

    python benchmarks/load_test.py --url http://127.0.0.1:8000 --concurrency 1,4,16

Self-contained, on an in-process server with a model directory (for example a random Qwen3 of
the 0.6B shape built by ``qwen3_rerank.testing.save_random_qwen3``):

    python benchmarks/load_test.py --model benchmarks/.models/tiny --device cpu --concurrency 1,4,16,64

Each level stops after ``--requests`` requests or ``--duration`` seconds, whichever comes first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlparse

import httpx

WORDS = [
    "retrieval",
    "ranking",
    "passage",
    "query",
    "model",
    "score",
    "document",
    "answer",
    "index",
    "search",
]


@dataclass
class LevelResult:
    concurrency: int
    completed: int
    rejected: int
    seconds: float
    latencies: list[float]
    requests_per_batch: float

    @property
    def per_second(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0

    def percentile(self, q: int) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else float("nan")
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[q - 1]


def check_loopback(url: str) -> str:
    """The URL without a trailing slash; refuses anything but localhost / 127.0.0.0/8 / ::1."""
    host = urlparse(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"--url must point at this machine (127.0.0.1, ::1 or localhost); got {url!r}")
    return url.rstrip("/")


def make_request(index: int, documents: int, doc_words: int) -> dict:
    """A rerank request with distinct, deterministic text (so no cache can flatter the figures)."""

    def text(seed: int) -> str:
        return " ".join(WORDS[(seed * 7 + i * 3) % len(WORDS)] for i in range(doc_words))

    return {
        "query": f"question {index}: {text(index)[:60]}",
        "documents": [f"{j}. {text(index * documents + j)}" for j in range(documents)],
    }


async def batch_counters(client: httpx.AsyncClient) -> tuple[int, int]:
    """(requests, batches) served so far, from ``/readyz``; (0, 0) if the server hides them."""
    response = await client.get("/readyz")
    batches = response.json().get("batches", {})
    return batches.get("requests", 0), batches.get("batches", 0)


async def run_level(url: str, concurrency: int, args: argparse.Namespace) -> LevelResult:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        requests_before, batches_before = await batch_counters(client)
        latencies: list[float] = []
        rejected = 0
        issued = 0
        started = time.perf_counter()
        deadline = started + args.duration

        async def worker() -> None:
            nonlocal issued, rejected
            while issued < args.requests and time.perf_counter() < deadline:
                body = make_request(issued, args.documents, args.doc_words)
                issued += 1
                sent = time.perf_counter()
                response = await client.post("/v1/rerank", json=body)
                if response.status_code == 429:
                    rejected += 1
                    await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                    continue
                response.raise_for_status()
                latencies.append(time.perf_counter() - sent)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        requests_after, batches_after = await batch_counters(client)
    batches = batches_after - batches_before
    per_batch = (requests_after - requests_before) / batches if batches else float("nan")
    return LevelResult(concurrency, len(latencies), rejected, seconds, latencies, per_batch)


@dataclass
class BurstResult:
    """Status codes of requests sent all at once, with no retry."""

    name: str
    statuses: list[int]

    def share(self, status: int) -> float:
        return self.statuses.count(status) / len(self.statuses) if self.statuses else 0.0


async def run_overload(url: str, args: argparse.Namespace) -> BurstResult:
    """``--overload-clients`` requests of ``--overload-documents`` documents each, at once."""
    clients = args.overload_clients
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        bodies = [make_request(10_000 + i, args.overload_documents, args.doc_words) for i in range(clients)]
        responses = await asyncio.gather(*(client.post("/v1/rerank", json=body) for body in bodies))
    return BurstResult("overload", [response.status_code for response in responses])


POISONED = b'{"query": "q", "documents": ["fine", "a\\ud800b"]}'  # a lone surrogate: invalid text


async def run_isolation(url: str, args: argparse.Namespace) -> tuple[BurstResult, BurstResult]:
    """Innocent and poisoned requests interleaved and sent at once: (innocent, poisoned)."""
    innocent_bodies = [make_request(20_000 + i, args.documents, args.doc_words) for i in range(16)]
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        innocent = [client.post("/v1/rerank", json=body) for body in innocent_bodies]
        poisoned = [
            client.post("/v1/rerank", content=POISONED, headers={"content-type": "application/json"})
            for _ in range(16)
        ]
        interleaved = [call for pair in zip(innocent, poisoned, strict=True) for call in pair]
        responses = await asyncio.gather(*interleaved)
    statuses = [response.status_code for response in responses]
    return BurstResult("innocent", statuses[0::2]), BurstResult("poisoned", statuses[1::2])


@contextlib.contextmanager
def local_server(model: str, device: str | None) -> Iterator[str]:
    """The real app on a free loopback port, in a background thread, reranking only."""
    from qwen3_rag.server import ServerSettings, create_app
    from qwen3_rag.testing import serving

    app = create_app(ServerSettings(reranker_model=model, device=device, rag="off"), rag_factory=None)
    with serving(app, timeout=600) as url:
        yield url


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="A running server on this machine, e.g. http://127.0.0.1:8000.")
    target.add_argument("--model", help="Start an in-process server with this model (Hub id or directory).")
    parser.add_argument("--device", default=None, help="Device of the in-process server (cpu, cuda).")
    parser.add_argument(
        "--concurrency", default="1,4,16,64", help="Comma-separated client counts, run in turn."
    )
    parser.add_argument("--requests", type=int, default=200, help="Most requests per level.")
    parser.add_argument("--duration", type=float, default=30.0, help="Most seconds per level.")
    parser.add_argument("--documents", type=int, default=10, help="Documents per request.")
    parser.add_argument("--doc-words", type=int, default=40, help="Words per document.")
    parser.add_argument("--overload-clients", type=int, default=64, help="Requests sent at once (0: skip).")
    parser.add_argument(
        "--overload-documents", type=int, default=1000, help="Documents per overload request."
    )
    args = parser.parse_args()
    for name in ("requests", "documents", "doc_words"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if not 0 < args.duration <= 600:
        parser.error("--duration must be in (0, 600] seconds")
    try:
        args.levels = [int(level) for level in args.concurrency.split(",")]
    except ValueError:
        parser.error(f"--concurrency must be comma-separated integers; got {args.concurrency!r}")
    if any(not 1 <= level <= 256 for level in args.levels):
        parser.error("each --concurrency level must be between 1 and 256")
    return args


def report(results: list[LevelResult], args: argparse.Namespace) -> None:
    print(f"POST /v1/rerank, {args.documents} documents x {args.doc_words} words per request")
    columns = ["clients", "requests", "429s", "req/s", "docs/s", "p50 ms", "p99 ms", "req/batch"]
    print(" ".join(f"{name:>9}" for name in columns))
    for r in results:
        print(
            f"{r.concurrency:>9} {r.completed:>9} {r.rejected:>9} {r.per_second:>9.2f} "
            f"{r.per_second * args.documents:>9.1f} {r.percentile(50) * 1000:>9.1f} "
            f"{r.percentile(99) * 1000:>9.1f} {r.requests_per_batch:>9.2f}"
        )
    if len(results) > 1 and results[0].per_second:
        print(
            f"throughput at {results[-1].concurrency} clients / at {results[0].concurrency}: "
            f"{results[-1].per_second / results[0].per_second:.2f}x"
        )


def report_bursts(bursts: list[BurstResult], args: argparse.Namespace) -> None:
    for burst in bursts:
        counts = {status: burst.statuses.count(status) for status in sorted(set(burst.statuses))}
        print(f"{burst.name}: {len(burst.statuses)} requests, status counts {counts}", end="")
        print(f", 429 share {burst.share(429):.0%}" if burst.name == "overload" else "")
    if args.overload_clients:
        print(f"(overload: {args.overload_clients} requests x {args.overload_documents} documents at once)")


def main() -> None:
    args = parse_args()
    server = local_server(args.model, args.device) if args.model else contextlib.nullcontext(args.url)
    with server as url:
        url = check_loopback(url)
        asyncio.run(run_level(url, 1, argparse.Namespace(**{**vars(args), "requests": 3})))  # warm-up
        results = [asyncio.run(run_level(url, level, args)) for level in args.levels]
        bursts = list(asyncio.run(run_isolation(url, args)))
        if args.overload_clients:
            bursts.insert(0, asyncio.run(run_overload(url, args)))
    report(results, args)
    report_bursts(bursts, args)


if __name__ == "__main__":
    main()
