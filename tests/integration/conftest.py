"""Elasticsearch for the integration tests: the cluster at ``ES_URL`` when it is set, else the
Elasticsearch-compatible stand-in started as a container through testcontainers when a container
engine answers, else the tests are skipped with the reason.

``.ci/test`` leaves ``ES_URL`` unset when an engine answers and the stand-in's image exists
(``.ci/container-engine`` builds it), and otherwise starts the stand-in as a host process and
sets ``ES_URL``; the run's output says which one served. Each test gets its own index, deleted
afterwards, so tests never see each other's passages. The stand-in is not Elasticsearch: where
the two disagree, Elasticsearch's documentation wins (docs/server.md).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from qwen3_rag.testing import minilm_model_dir
from tests.containers import STANDIN_IMAGE, engine_problem, ensure_local_images, has_image, say

STARTUP_TIMEOUT_S = 120


@pytest.fixture(scope="session")
def es_url(pytestconfig: pytest.Config) -> Iterator[str]:
    """The URL of a running Elasticsearch 8.x API (single node, security off)."""
    url = os.environ.get("ES_URL")
    if url:
        _check_answers(url)
        say(pytestconfig, f"integration: Elasticsearch at ES_URL={url}")
        yield url
        return
    problem = engine_problem()
    if problem:
        pytest.skip(f"no Elasticsearch: ES_URL is not set and {problem}")
    with _standin_container() as container:
        url = f"http://{container.get_container_host_ip()}:{container.get_exposed_port(9200)}"
        say(
            pytestconfig,
            f"integration: Elasticsearch stand-in container {STANDIN_IMAGE} at {url} (testcontainers)",
        )
        yield url


def _standin_container():  # -> testcontainers DockerContainer
    """The stand-in's image as a generic container, published on 127.0.0.1 only, ready once its
    HTTP port answers. Ryuk (testcontainers' reaper) needs an image from Docker Hub, so it runs only
    where that image is present; the context manager removes the container either way."""
    from testcontainers.core.config import ConnectionMode, testcontainers_config
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import HttpWaitStrategy

    if not has_image(STANDIN_IMAGE):
        ensure_local_images()
    if not os.environ.get("TESTCONTAINERS_CONNECTION_MODE"):
        # The port is published on the engine host's 127.0.0.1, which is this machine for the engine
        # .ci/container-engine starts; testcontainers would guess a gateway address where /.dockerenv exists.
        testcontainers_config.connection_mode_override = ConnectionMode.docker_host
    if "TESTCONTAINERS_RYUK_DISABLED" not in os.environ and not has_image(testcontainers_config.ryuk_image):
        testcontainers_config.ryuk_disabled = True
    container = DockerContainer(STANDIN_IMAGE).waiting_for(
        HttpWaitStrategy(9200, "/").for_status_code(200).with_startup_timeout(STARTUP_TIMEOUT_S)
    )
    # A random port on 127.0.0.1 only (docker-py's (address, port) form, which with_bind_ports lacks):
    # the stand-in has no authentication.
    container.ports["9200"] = ("127.0.0.1", None)
    return container


def _check_answers(url: str) -> None:
    client = Elasticsearch(url, request_timeout=10)
    try:
        client.info()
    except Exception as error:
        pytest.skip(f"ES_URL={url} does not answer: {error}")
    finally:
        client.close()


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


@pytest.fixture
def cli_env(es_url: str, index_name: str, tiny_qwen3_dir: Path) -> dict[str, str]:
    """The variables a user sets to run the commands on this test's index, with the offline models
    (a test on another index replaces ``QWEN3_RAG_INDEX``)."""
    return {
        "QWEN3_RAG_BACKEND": "elasticsearch",
        "ES_URL": es_url,
        "QWEN3_RAG_INDEX": index_name,
        "QWEN3_RAG_EMBEDDING_MODEL": str(minilm_model_dir()),
        "QWEN3_RERANK_MODEL": str(tiny_qwen3_dir),
        "QWEN3_RAG_DEVICE": "cpu",
        "COLUMNS": "200",
    }


@pytest.fixture(autouse=True)
def no_haystack_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Haystack would try to send usage statistics; the CI machine has no internet."""
    monkeypatch.setenv("HAYSTACK_TELEMETRY_ENABLED", "False")
