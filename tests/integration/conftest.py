"""Elasticsearch for the integration tests: a testcontainers container when a Docker engine
answers, else the cluster at ``ES_URL``, else the tests are skipped with the reason.

CI has no Docker engine: it starts the Elasticsearch-compatible ``noida-db`` and sets ``ES_URL``.
Each test gets its own index, deleted afterwards, so tests never see each other's passages.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from elasticsearch import Elasticsearch

ELASTICSEARCH_IMAGE = "docker.elastic.co/elasticsearch/elasticsearch:8.15.3"


def _docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env()
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@pytest.fixture(scope="session")
def es_url() -> Iterator[str]:
    """The URL of a running Elasticsearch 8.x (single node, security off)."""
    if _docker_answers():
        from testcontainers.community.elasticsearch import ElasticSearchContainer

        container = ElasticSearchContainer(ELASTICSEARCH_IMAGE, mem_limit="1g")
        container.with_env("discovery.type", "single-node")
        with container:
            yield container.get_url()
        return
    url = os.environ.get("ES_URL")
    if not url:
        pytest.skip("no Elasticsearch: no Docker engine answers and ES_URL is not set")
    client = Elasticsearch(url, request_timeout=10)
    try:
        client.info()
    except Exception as error:
        pytest.skip(f"ES_URL={url} does not answer: {error}")
    finally:
        client.close()
    yield url


@pytest.fixture
def index_name(es_url: str) -> Iterator[str]:
    """A fresh index name for one test; the index is deleted after it."""
    name = f"qwen3-rag-test-{uuid.uuid4().hex[:12]}"
    yield name
    client = Elasticsearch(es_url, request_timeout=10)
    try:
        client.indices.delete(index=name, ignore_unavailable=True)
    finally:
        client.close()


@pytest.fixture(autouse=True)
def no_haystack_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Haystack would try to send usage statistics; the CI machine has no internet."""
    monkeypatch.setenv("HAYSTACK_TELEMETRY_ENABLED", "False")
