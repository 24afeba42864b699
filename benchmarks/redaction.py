"""Redaction on crafted text (issue 26): how long `redact` takes on one 2,000-character name of
``a-a-a-...`` with the secret-name pattern as it was (``\\b`` before the name: quadratic) and as
it is (a look-behind: linear), and, on an in-process server, how long the 422 of a body with 20
such field names takes and how long a ``/healthz`` sent meanwhile waits.

    python benchmarks/redaction.py                        # builds a tiny random Qwen3 first
    python benchmarks/redaction.py --model DIR --rounds 10

The server half needs only a model directory that loads (the 422 never reaches the model).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import threading
import time
from collections.abc import Callable

import httpx

from qwen3_rag.server.observability import _KEY_VALUE, redact

# The pattern before issue 26, for comparison.
_OLD_NAMES = r"(?:[a-z0-9_-]*(?:password|passwd|secret|token|api[_-]?key|apikey|credentials?))"
OLD_KEY_VALUE = re.compile(
    rf"(?P<key>[\"']?\b{_OLD_NAMES}[\"']?\s*[:=]\s*)(?P<value>\"[^\"]*\"|'[^']*'|[^\"'\s,&;}})\]]+)",
    re.IGNORECASE,
)


def seconds(call: Callable[[], object], rounds: int) -> float:
    """The median time of ``call``."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def crafted_body(names: int = 20, length: int = 2000) -> bytes:
    fields = {f"{index}" + "-a" * (length // 2): [index] for index in range(names)}
    return json.dumps({"query": "q", "documents": [{"text": "a", **fields}]}).encode()


def server_round(url: str, body: bytes) -> tuple[float, float]:
    """(seconds to the crafted body's 422, seconds a /healthz sent 20 ms after it waited)."""
    result: dict[str, float] = {}

    def crafted() -> None:
        started = time.perf_counter()
        response = httpx.post(f"{url}/v1/rerank", content=body, timeout=300)
        assert response.status_code == 422, response.text[:200]
        result["422"] = time.perf_counter() - started

    thread = threading.Thread(target=crafted)
    thread.start()
    time.sleep(0.02)  # the crafted body is being handled
    started = time.perf_counter()
    assert httpx.get(f"{url}/healthz", timeout=300).status_code == 200
    healthz = time.perf_counter() - started
    thread.join()
    return result["422"], healthz


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a Qwen3 model directory; default: build a tiny random one")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    name = "0" + "-a" * 1000
    old = seconds(lambda: OLD_KEY_VALUE.sub("***", name), args.rounds)
    new = seconds(lambda: _KEY_VALUE.sub("***", name), args.rounds)
    whole = seconds(lambda: redact(name, []), args.rounds)
    print(f"one 2,001-character a-a-a name: old pattern {old * 1000:.1f} ms, now {new * 1000:.3f} ms")
    print(f"redact() of it (every pattern): {whole * 1000:.3f} ms")

    from qwen3_rag.server import ServerSettings, create_app
    from qwen3_rag.testing import serving

    with tempfile.TemporaryDirectory() as scratch:
        model = args.model
        if model is None:
            from qwen3_rerank.testing import save_random_qwen3

            model = str(save_random_qwen3(scratch, initializer_range=0.2))
        app = create_app(ServerSettings(reranker_model=model, device="cpu", rag="off"), rag_factory=None)
        with serving(app, timeout=600) as url:
            body = crafted_body()
            rounds = [server_round(url, body) for _ in range(args.rounds)]
    errors, probes = zip(*rounds, strict=True)
    print(
        f"server, body of 20 such field names ({len(body):,} bytes), {args.rounds} rounds: 422 in "
        f"{statistics.median(errors) * 1000:.0f} ms median ({max(errors) * 1000:.0f} max); /healthz "
        f"sent meanwhile answered in {statistics.median(probes) * 1000:.0f} ms median "
        f"({max(probes) * 1000:.0f} max)"
    )


if __name__ == "__main__":
    main()
