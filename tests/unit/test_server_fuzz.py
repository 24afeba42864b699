"""Property-based fuzzing of every endpoint from the server's own OpenAPI schema (schemathesis):
valid and invalid bodies alike must never get a 5xx, and every documented response must match
its schema. It runs against the ASGI app with a tiny random Qwen3 and the real embedded RAG
pipeline, with API keys and writes on, so the authenticated paths are the ones fuzzed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.openapi import from_dict
from schemathesis.specs.openapi.checks import response_schema_conformance

from qwen3_rag.server import ServerSettings, create_app
from qwen3_rag.service import RagService
from qwen3_rag.testing import offline_settings
from qwen3_rerank import Qwen3Reranker
from tests.server_client import LocalTestClient

KEY = "fuzz-key-0123456789"
# Per endpoint and generation mode; ~60 s in all on 2 CPU cores.
MAX_EXAMPLES = 40
CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.fixture(scope="module")
def client(tiny_qwen3_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTestClient]:
    store = tmp_path_factory.mktemp("fuzz-store")

    def pipeline(settings: ServerSettings, reranker: Qwen3Reranker) -> RagService:
        return RagService(offline_settings(store, reranker_model=reranker.model_id), reranker=reranker)

    # Small limits keep each model call small; the fuzzer still crosses every one of them.
    server = ServerSettings(
        rag="on", allow_writes=True, api_keys=(KEY,), max_documents=8, max_document_chars=300
    )
    with Qwen3Reranker(str(tiny_qwen3_dir), device="cpu", max_length=256) as reranker:
        app = create_app(server, reranker=reranker, rag_factory=pipeline)
        with LocalTestClient(app, raise_server_exceptions=False) as client:
            yield client


def test_no_input_gets_a_server_error_and_responses_match_the_schema(client: LocalTestClient) -> None:
    schema = from_dict(client.get("/openapi.json").json())
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = [f"{op.method.upper()} {op.path}" for op in operations]
    assert set(labels) >= {
        "POST /v1/rerank",
        "POST /v1/ask",
        "POST /v1/documents",
        "GET /healthz",
        "GET /readyz",
    }
    statuses: Counter[tuple[str, int]] = Counter()
    for operation in operations:
        # Invalid inputs need something to be invalid: a body (the GET endpoints take nothing).
        for mode in GenerationMode if operation.body else [GenerationMode.POSITIVE]:
            fuzz(client, operation, mode, statuses)
    tried = Counter({label: 0 for label in labels})
    for (label, _), count in statuses.items():
        tried[label] += count
    print("\nschemathesis cases per endpoint (0 server errors):")
    for label, count in sorted(tried.items()):
        codes = {code: n for (name, code), n in sorted(statuses.items()) if name == label}
        print(f"  {label}: {count} cases, status codes {codes}")
    assert all(code < 500 for _, code in statuses)
    assert all(tried[f"POST {path}"] >= MAX_EXAMPLES for path in ("/v1/rerank", "/v1/ask", "/v1/documents"))
    assert all(tried[label] >= 1 for label in labels)


def fuzz(
    client: LocalTestClient, operation: Any, mode: GenerationMode, statuses: Counter[tuple[str, int]]
) -> None:
    """Up to `MAX_EXAMPLES` generated requests to ``operation``, each checked by `CHECKS`."""
    label = f"{operation.method.upper()} {operation.path}"

    @settings(
        max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def one_case(case: Any) -> None:
        kwargs = case.as_transport_kwargs(base_url="http://localhost")
        if not kwargs.get("cookies"):
            kwargs.pop("cookies", None)
        kwargs["headers"] = {**(kwargs.get("headers") or {}), "Authorization": f"Bearer {KEY}"}
        response = client.request(**kwargs)
        statuses[(label, response.status_code)] += 1
        case.validate_response(response, checks=CHECKS)

    one_case()
