"""Access control and secrets (issue 13, defects 3 and 4): API keys, the allowed-hosts check,
writes off by default, and credentials redacted in ``/readyz``, error bodies and logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from qwen3_rag.server import ServerSettings, create_app
from qwen3_rag.server.edge import allowed_hosts
from qwen3_rag.server.observability import redact, secret_values
from qwen3_rag.stores.base import StoreError
from qwen3_rerank import Qwen3Reranker
from tests.server_client import LocalTestClient
from tests.server_fakes import FakePipeline, unreachable

KEY = "sk-test-4f1c9e"
PASSWORD = "s3cret-pw"
ES_URL = f"http://elastic:{PASSWORD}@es.internal:9200"
RERANK = {"query": "q", "documents": ["a", "b"]}


@pytest.fixture(scope="module")
def reranker(tiny_qwen3_dir: Path) -> Iterator[Qwen3Reranker]:
    with Qwen3Reranker(str(tiny_qwen3_dir), device="cpu") as reranker:
        yield reranker


def serve(
    reranker: Qwen3Reranker, pipeline: FakePipeline | None = None, **settings: object
) -> LocalTestClient:
    factory = (lambda s, r: pipeline) if pipeline is not None else None
    rag = "on" if pipeline is not None else "off"
    return LocalTestClient(
        create_app(ServerSettings(rag=rag, **settings), reranker=reranker, rag_factory=factory)
    )


# --- API keys


def test_without_keys_configured_the_api_is_open(reranker: Qwen3Reranker) -> None:
    with serve(reranker) as client:
        assert client.post("/v1/rerank", json=RERANK).status_code == 200


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {KEY}", KEY, "Bearer "])
def test_a_missing_or_wrong_key_is_401_with_www_authenticate(
    reranker: Qwen3Reranker, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    with serve(reranker, api_keys=(KEY, "other-key")) as client:
        response = client.post("/v1/rerank", json=RERANK, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in response.json()["detail"]


@pytest.mark.parametrize("path", ["/v1/rerank", "/v2/rerank", "/rerank"])
def test_any_configured_key_opens_every_rerank_route(reranker: Qwen3Reranker, path: str) -> None:
    with serve(reranker, api_keys=("first-key", KEY)) as client:
        response = client.post(path, json=RERANK, headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 200


def test_ask_and_documents_need_the_key_too(reranker: Qwen3Reranker) -> None:
    with serve(reranker, FakePipeline(), api_keys=(KEY,), allow_writes=True) as client:
        ask = client.post("/v1/ask", json={"question": "q"})
        documents = client.post("/v1/documents", json={"documents": [{"text": "t", "source": "s"}]})
        authorized = client.post(
            "/v1/ask", json={"question": "q"}, headers={"Authorization": f"Bearer {KEY}"}
        )
    assert ask.status_code == documents.status_code == 401
    assert authorized.status_code == 200


def test_the_key_is_checked_before_the_body_is_parsed(reranker: Qwen3Reranker) -> None:
    with serve(reranker, api_keys=(KEY,)) as client:
        response = client.post(
            "/v1/rerank", content=b"not json", headers={"content-type": "application/json"}
        )
    assert response.status_code == 401  # a stranger learns nothing about the API's fields


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/", "/static/app.js", "/metrics", "/openapi.json"])
def test_health_metrics_docs_and_the_page_stay_open(reranker: Qwen3Reranker, path: str) -> None:
    with serve(reranker, api_keys=(KEY,)) as client:
        assert client.get(path).status_code == 200


def test_openapi_documents_the_bearer_scheme(reranker: Qwen3Reranker) -> None:
    with serve(reranker, api_keys=(KEY,)) as client:
        schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert schema["paths"]["/v1/rerank"]["post"]["security"] == [{"HTTPBearer": []}]


def test_the_page_sends_the_key_the_user_typed() -> None:
    page = Path(__file__).resolve().parents[2] / "pipelines/qwen3_rag/server/static"
    assert 'id="api-key"' in (page / "index.html").read_text()
    assert "Authorization" in (page / "app.js").read_text()


# --- writes


def test_writes_are_off_by_default(reranker: Qwen3Reranker) -> None:
    pipeline = FakePipeline()
    with serve(reranker, pipeline) as client:
        response = client.post("/v1/documents", json={"documents": [{"text": "t", "source": "s"}]})
        ask = client.post("/v1/ask", json={"question": "q"})
    assert response.status_code == 403
    assert "QWEN3_SERVER_ALLOW_WRITES" in response.json()["detail"]
    assert pipeline.count == 0, "nothing was indexed"
    assert ask.status_code == 200, "reading stays on"


def test_writes_can_be_switched_on(reranker: Qwen3Reranker) -> None:
    with serve(reranker, FakePipeline(), allow_writes=True) as client:
        response = client.post("/v1/documents", json={"documents": [{"text": "t", "source": "s"}]})
    assert response.status_code == 200 and response.json()["document_count"] == 1


# --- allowed hosts


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:8000", "127.0.0.1.nip.io"])
def test_a_foreign_host_header_is_400(reranker: Qwen3Reranker, host: str) -> None:
    with serve(reranker) as client:
        response = client.post("/v1/rerank", json=RERANK, headers={"Host": host})
        page = client.get("/", headers={"Host": host})
    assert response.status_code == page.status_code == 400


@pytest.mark.parametrize("host", ["localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000"])
def test_loopback_names_are_accepted_by_default(reranker: Qwen3Reranker, host: str) -> None:
    with serve(reranker) as client:
        assert client.post("/v1/rerank", json=RERANK, headers={"Host": host}).status_code == 200


def test_allowed_hosts_add_the_bound_address_or_replace_the_defaults() -> None:
    assert allowed_hosts(ServerSettings(host="10.0.0.5")) == ["localhost", "127.0.0.1", "[::1]", "10.0.0.5"]
    assert "0.0.0.0" not in allowed_hosts(ServerSettings(host="0.0.0.0"))
    configured = ServerSettings.from_env({"QWEN3_SERVER_ALLOWED_HOSTS": "rerank.example.com, *.internal"})
    assert allowed_hosts(configured) == ["rerank.example.com", "*.internal"]


def test_a_configured_host_is_accepted(reranker: Qwen3Reranker) -> None:
    with serve(reranker, allowed_hosts=("rerank.example.com",)) as client:
        ok = client.post("/v1/rerank", json=RERANK, headers={"Host": "rerank.example.com"})
        local = client.post("/v1/rerank", json=RERANK, headers={"Host": "localhost"})
    assert ok.status_code == 200 and local.status_code == 400


# --- redaction


def test_readyz_and_503s_never_show_the_store_password(reranker: Qwen3Reranker) -> None:
    with serve(reranker, unreachable(ES_URL), allow_writes=True) as client:
        ready = client.get("/readyz")
        ask = client.post("/v1/ask", json={"question": "q"})
        documents = client.post("/v1/documents", json={"documents": [{"text": "t", "source": "s"}]})
    assert ready.status_code == ask.status_code == documents.status_code == 503
    for response in (ready, ask, documents):
        assert PASSWORD not in response.text
        assert "http://***@es.internal:9200" in response.text  # the host still helps diagnose


def test_a_pipeline_that_failed_to_start_is_reported_without_secrets(
    reranker: Qwen3Reranker, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(settings: ServerSettings, reranker: Qwen3Reranker) -> FakePipeline:
        raise StoreError(f"no index at {ES_URL}")

    app = create_app(ServerSettings(rag="auto"), reranker=reranker, rag_factory=broken)
    with caplog.at_level(logging.WARNING), LocalTestClient(app) as client:
        ready = client.get("/readyz").json()
        ask = client.post("/v1/ask", json={"question": "q"})
    # The page's header line prints /readyz's `rag` field.
    assert "es.internal" in ready["rag"] and PASSWORD not in ready["rag"]
    assert PASSWORD not in ask.text
    assert "es.internal" in caplog.text and PASSWORD not in caplog.text


def test_secret_environment_values_are_masked_wherever_they_appear(
    reranker: Qwen3Reranker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ES_API_KEY", "ZXNrZXk6c2VjcmV0")
    pipeline = FakePipeline(error=StoreError("401 from Elasticsearch for key ZXNrZXk6c2VjcmV0"))
    with serve(reranker, pipeline) as client:
        response = client.post("/v1/ask", json={"question": "q"})
    assert response.status_code == 503
    assert "ZXNrZXk6c2VjcmV0" not in response.text and "***" in response.text


def test_api_keys_never_appear_in_settings_output() -> None:
    settings = ServerSettings.from_env({"QWEN3_SERVER_API_KEYS": f"{KEY},other-key"})
    assert [key.get_secret_value() for key in settings.api_keys] == [KEY, "other-key"]
    assert KEY not in repr(settings) and KEY not in str(settings.model_dump())
    assert KEY in secret_values({}, extra=[KEY])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET http://user:pw@host:9200/x", "GET http://***@host:9200/x"),
        ("https://token@host/x", "https://***@host/x"),
        ("url?api_key=abc&x=1", "url?api_key=***&x=1"),
        ("Authorization: Bearer sk-1.2", "Authorization: Bearer ***"),
        ("{'password': 'p w'}", "{'password': ***}"),
        ("OPENAI_API_KEY=sk-abc", "OPENAI_API_KEY=***"),
        ("mail a@b.com at http://host:9200", "mail a@b.com at http://host:9200"),
        ("max_tokens_per_doc=5", "max_tokens_per_doc=5"),
    ],
)
def test_redact_masks_credentials_and_keeps_the_rest(text: str, expected: str) -> None:
    assert redact(text, secrets=[]) == expected
