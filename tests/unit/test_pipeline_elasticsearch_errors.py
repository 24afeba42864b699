"""Elasticsearch faults become one `StoreError` with the URL and what to do (no server needed)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from qwen3_rag.settings import Settings
from qwen3_rag.stores import StoreError
from qwen3_rag.stores.elasticsearch import ElasticsearchStore, mapping_for


class RejectsCredentials(BaseHTTPRequestHandler):
    """Answers every request as a secured Elasticsearch does to a wrong password, and records the
    Authorization header it was sent."""

    authorizations: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        RejectsCredentials.authorizations.append(self.headers.get("Authorization", ""))
        error = {"type": "security_exception", "reason": "unable to authenticate user [elastic]"}
        body = json.dumps({"error": error, "status": 401}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        """Keep test output quiet."""


@pytest.fixture
def secured_url() -> Iterator[str]:
    RejectsCredentials.authorizations = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), RejectsCredentials)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def store_at(url: str, **settings: object) -> ElasticsearchStore:
    return ElasticsearchStore.from_settings(
        Settings.from_env({}, backend="elasticsearch", es_url=url, **settings)
    )


def test_rejected_credentials_name_the_url_and_the_variables(secured_url: str) -> None:
    store = store_at(secured_url, es_username="elastic", es_password="wrong")
    with pytest.raises(StoreError, match="rejected the credentials") as raised:
        store.ping()
    store.close()
    assert secured_url in str(raised.value) and "ES_API_KEY" in str(raised.value)


@pytest.mark.parametrize(
    ("credentials", "scheme"),
    [
        ({"es_api_key": "a2V5", "es_username": "elastic", "es_password": "pw"}, "ApiKey a2V5"),
        ({"es_username": "elastic", "es_password": "pw"}, "Basic "),
    ],
)
def test_an_api_key_is_preferred_to_basic_auth(
    secured_url: str, credentials: dict[str, str], scheme: str
) -> None:
    store = store_at(secured_url, **credentials)
    with pytest.raises(StoreError):
        store.ping()
    store.close()
    assert RejectsCredentials.authorizations[0].startswith(scheme)


def test_an_unreachable_cluster_names_the_url_and_a_hint() -> None:
    store = store_at("http://127.0.0.1:9")
    with pytest.raises(StoreError, match=r"cannot reach Elasticsearch at http://127\.0\.0\.1:9 .*ES_URL"):
        store.ping()
    store.close()


def test_the_mapping_dimension_comes_from_the_caller() -> None:
    assert mapping_for(1024)["properties"]["embedding"]["dims"] == 1024
    assert mapping_for(384)["properties"]["embedding"]["similarity"] == "cosine"
