"""The structure of docker/docker-compose.yml and docker/Dockerfile.

The stack itself runs in tests/stack wherever a container engine starts; these checks need none and
catch the mistakes that break ``docker compose up`` silently or only elsewhere: an app that starts
before Elasticsearch is healthy, a setting the app does not read, a missing volume or health check,
a port open to the network, a build that only works with Docker Hub and PyTorch's index in reach.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from qwen3_rag.server.settings import ServerSettings, env_name
from qwen3_rag.settings import ENVIRONMENT

DOCKER = Path(__file__).resolve().parents[2] / "docker"
APPS = ["app", "app-gpu"]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (DOCKER / "Dockerfile").read_text()


def test_services_and_profiles(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"elasticsearch", "app", "app-gpu", "ollama"} <= set(services)
    assert "profiles" not in services["elasticsearch"] and "profiles" not in services["app"], (
        "a plain `docker compose up` must start Elasticsearch and the CPU app"
    )
    assert services["app-gpu"]["profiles"] == ["gpu"]
    assert services["ollama"]["profiles"] == ["llm"]
    assert services["ollama-pull"]["profiles"] == ["llm"]


def test_elasticsearch_is_a_single_node_8x_with_heap_volume_and_health_check(compose: dict[str, Any]) -> None:
    es = compose["services"]["elasticsearch"]
    assert re.search(r"elasticsearch:\$\{ES_VERSION:-8\.\d+\.\d+\}$", es["image"])
    env = es["environment"]
    assert env["discovery.type"] == "single-node"
    assert env["xpack.security.enabled"] == "false"
    assert "-Xmx" in env["ES_JAVA_OPTS"]
    assert "es-data:/usr/share/elasticsearch/data" in es["volumes"]
    assert "_cluster/health" in " ".join(es["healthcheck"]["test"])
    assert all(port.startswith("127.0.0.1:") for port in es["ports"]), "no unauthenticated ES on the network"


def test_security_off_says_how_to_turn_it_on() -> None:
    text = (DOCKER / "docker-compose.yml").read_text()
    assert re.search(r"To turn it on.*xpack\.security\.enabled=true", text, re.DOTALL)


@pytest.mark.parametrize("name", APPS)
def test_apps_wait_for_a_healthy_elasticsearch(compose: dict[str, Any], name: str) -> None:
    app = compose["services"][name]
    assert app["depends_on"]["elasticsearch"]["condition"] == "service_healthy"
    optional = {key: value for key, value in app["depends_on"].items() if key != "elasticsearch"}
    assert optional and all(value["required"] is False for value in optional.values()), (
        "the LLM services are optional: the app must start without the llm profile"
    )


@pytest.mark.parametrize("name", APPS)
def test_apps_index_the_sample_corpus_from_elasticsearch_with_models_on_a_volume(
    compose: dict[str, Any], name: str
) -> None:
    app = compose["services"][name]
    env = app["environment"]
    assert env["QWEN3_RAG_BACKEND"] == "elasticsearch"
    assert env["ES_URL"] == "http://elasticsearch:9200"
    assert env["QWEN3_SERVER_SAMPLE_CORPUS"] == "/app/samples"
    assert env["QWEN3_SERVER_RAG"] == "on"
    assert "models:/models" in app["volumes"]
    assert "/healthz" in " ".join(app["healthcheck"]["test"])
    assert [port.split(":")[-1] for port in app["ports"]] == ["8000"]


@pytest.mark.parametrize("name", APPS)
def test_apps_are_published_on_localhost_unless_told_otherwise(compose: dict[str, Any], name: str) -> None:
    (port,) = compose["services"][name]["ports"]
    assert port.startswith("${QWEN3_PUBLISH_ADDRESS:-127.0.0.1}:"), port


@pytest.mark.parametrize("name", APPS)
def test_apps_pass_the_package_sources_to_the_build(compose: dict[str, Any], name: str) -> None:
    args = compose["services"][name]["build"]["args"]
    for arg in ("TORCH_INDEX_URL", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        assert args[arg] == f"${{{arg}:-}}", f"{name} does not forward {arg}"


def test_gpu_app_builds_cuda_and_reserves_nvidia_devices(compose: dict[str, Any]) -> None:
    gpu = compose["services"]["app-gpu"]
    assert gpu["build"]["args"]["VARIANT"] == "cuda"
    assert gpu["build"]["dockerfile"] == "docker/Dockerfile"
    assert gpu["environment"]["QWEN3_RAG_DEVICE"] == "cuda"
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert compose["services"]["app"]["build"]["args"]["VARIANT"] == "cpu"


def test_the_llm_is_reached_through_its_openai_compatible_endpoint(compose: dict[str, Any]) -> None:
    env = compose["services"]["app"]["environment"]
    assert env["OPENAI_BASE_URL"] == "${OPENAI_BASE_URL:-http://ollama:11434/v1}"
    assert env["QWEN3_RAG_LLM"] == "${QWEN3_RAG_LLM:-none}"
    assert compose["services"]["ollama"]["healthcheck"]["test"]
    assert "ollama-models:/root/.ollama" in compose["services"]["ollama"]["volumes"]


def test_every_named_volume_is_declared(compose: dict[str, Any]) -> None:
    used = {
        volume.split(":")[0]
        for service in compose["services"].values()
        for volume in service.get("volumes", [])
        if not volume.startswith((".", "/"))
    }
    assert used == set(compose["volumes"])


def test_every_app_variable_is_a_setting_the_app_reads(compose: dict[str, Any]) -> None:
    known = (
        {env_name(field) for field in ServerSettings.model_fields} | set(ENVIRONMENT.values()) | {"HF_TOKEN"}
    )
    for name in APPS:
        unknown = set(compose["services"][name]["environment"]) - known
        assert not unknown, f"{name} sets variables nothing reads: {sorted(unknown)}"


def test_dockerfile_has_cpu_default_cuda_variant_non_root_user_cache_volume_and_health_check(
    dockerfile: str,
) -> None:
    assert re.search(r"^ARG VARIANT=cpu$", dockerfile, re.MULTILINE)
    assert "download.pytorch.org/whl/cpu" in dockerfile and "cuda)" in dockerfile
    assert re.search(r"^USER app$", dockerfile, re.MULTILINE)
    assert re.search(r"^VOLUME \[\"/models\"\]$", dockerfile, re.MULTILINE)
    assert "HF_HOME=/models" in dockerfile
    assert re.search(r"^HEALTHCHECK .*\n.*/healthz", dockerfile, re.MULTILINE)
    assert dockerfile.rstrip().endswith('CMD ["qwen3-rerank", "serve"]')


def test_dockerfile_builds_without_a_registry_frontend_or_pytorch_index(dockerfile: str) -> None:
    assert not re.search(r"^#\s*syntax=", dockerfile, re.MULTILINE), "a syntax line pulls from Docker Hub"
    for arg in ("TORCH_INDEX_URL", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        assert re.search(rf"^ARG {arg}$", dockerfile, re.MULTILINE), arg
    for context in ("wheels", "certs"):
        assert re.search(rf"^FROM scratch AS {context}$", dockerfile, re.MULTILINE), context
        assert dockerfile.count(f"--mount=type=bind,from={context},target=/{context}") == 2, context
    assert "PIP_CERT=/certs/ca-certificates.crt" in dockerfile


def test_the_image_copies_the_sample_corpus_the_compose_file_points_at(dockerfile: str) -> None:
    assert "COPY --chown=app:app pipelines/qwen3_rag/samples /app/samples" in dockerfile
    assert (DOCKER.parent / "pipelines" / "qwen3_rag" / "samples").is_dir()
