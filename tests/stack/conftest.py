"""The demo stack for real: the app image built from docker/Dockerfile, then docker/docker-compose.yml
started with Docker Compose v2 and ``compose.override.yml``, which only swaps Elasticsearch for the
locally built stand-in and points the app at local models (no registry and no model hub here).

Everything runs under a compose project of its own, on a free port, and is removed afterwards,
volumes included, so a demo stack of the user's own is never touched. Where no container engine
answers, the tests are skipped with the reason; an engine without Compose v2 or buildx is a set-up
error and fails them. The build, start-up and restart times are written to the run's output.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from qwen3_rag.testing import minilm_model_dir
from tests.browser.conftest import browser  # noqa: F401  (the headless Chromium fixture, shared)
from tests.containers import STANDIN_IMAGE, docker, engine_problem, ensure_local_images, say

from .compose import COMPOSE_FILE, DOCKERFILE, MODELS_IN_CONTAINER, Stack

APP_IMAGE = "qwen3-rerank:cpu"
"""The image the compose file gives the ``app`` service, so ``up --no-build`` runs what was built."""
BUILD_TIMEOUT_S = 1800


def _compose_variables() -> set[str]:
    """The variables the compose file reads from the shell, which a developer's shell must not set here."""
    return set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", COMPOSE_FILE.read_text()))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _readable_copy(source: Path, target: Path) -> None:
    """Copy a model folder so that the container's unprivileged user can read it."""
    shutil.copytree(source, target)
    for path in [target, *target.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def _torch_wheels(directory: Path) -> Path | None:
    """This machine's torch wheel for the image's Python, found the way pip finds it (a local wheel
    directory, a mirror, PyPI), so that the build needs no access to PyTorch's own index. None where
    pip cannot get the exact build installed here; the image then takes torch from its default index."""
    image_python = re.search(r"^ARG PYTHON_VERSION=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    if image_python is None or image_python.group(1) != f"{sys.version_info.major}.{sys.version_info.minor}":
        return None
    version = importlib.metadata.version("torch")
    download = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "-d",
        str(directory),
    ]
    result = subprocess.run(
        [*download, f"torch=={version}"], capture_output=True, text=True, timeout=900, check=False
    )
    return directory if result.returncode == 0 and any(directory.glob("torch-*.whl")) else None


def _ca_bundle(directory: Path) -> Path | None:
    """The CA bundle pip trusts on this machine (a TLS-inspecting proxy's CA included), for the build."""
    for candidate in (
        os.environ.get("PIP_CERT"),
        os.environ.get("SSL_CERT_FILE"),
        "/etc/ssl/certs/ca-certificates.crt",
    ):
        if candidate and Path(candidate).is_file():
            shutil.copy(candidate, directory / "ca-certificates.crt")
            return directory
    return None


@pytest.fixture(scope="session")
def engine() -> None:
    """A container engine with Compose v2 and buildx; skips where no engine answers."""
    problem = engine_problem()
    if problem:
        pytest.skip(f"the stack test needs a container engine: {problem}")
    for tool in ("compose", "buildx"):
        if docker(tool, "version", check=False).returncode != 0:
            pytest.fail(
                f"the engine answers but `docker {tool}` is missing (bash .ci/container-engine installs it)"
            )


@pytest.fixture(scope="session")
def app_image(engine: None, pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The app image, built from docker/Dockerfile like `docker compose build` would, plus the local
    package sources that a machine without PyTorch's index or a public CA needs."""
    ensure_local_images()
    command = ["build", "-f", str(DOCKERFILE), "-t", APP_IMAGE]
    wheels = _torch_wheels(tmp_path_factory.mktemp("stack-wheels"))
    if wheels is not None:
        command += ["--build-context", f"wheels={wheels}"]
    certs = _ca_bundle(tmp_path_factory.mktemp("stack-certs"))
    if certs is not None:
        command += ["--build-context", f"certs={certs}"]
    for name in ("TORCH_INDEX_URL", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        if os.environ.get(name):
            command += ["--build-arg", f"{name}={os.environ[name]}"]
    started = time.monotonic()
    docker(*command, ".", timeout=BUILD_TIMEOUT_S)
    size = docker("image", "inspect", "--format", "{{.Size}}", APP_IMAGE).stdout.strip()
    say(
        pytestconfig,
        f"stack: built {APP_IMAGE} in {time.monotonic() - started:.0f} s "
        f"({int(size) / 1e9:.2f} GB; torch from {'a local wheel' if wheels else 'its index'})",
    )
    return APP_IMAGE


@pytest.fixture(scope="session")
def stack(
    app_image: str,
    tiny_qwen3_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    pytestconfig: pytest.Config,
) -> Iterator[Stack]:
    """Elasticsearch (the stand-in) and the app, healthy, with the sample corpus indexed."""
    models = tmp_path_factory.mktemp("stack-models")
    models.chmod(0o755)  # mounted as /local-models: the container's user must be able to enter it
    _readable_copy(tiny_qwen3_dir, models / "reranker")
    _readable_copy(minilm_model_dir(), models / "embedder")
    port = _free_port()
    shell = {name: value for name, value in os.environ.items() if name not in _compose_variables()}
    stack = Stack(
        project=f"qwen3-stack-test-{uuid.uuid4().hex[:8]}",
        url=f"http://127.0.0.1:{port}",
        env=shell
        | {
            "APP_PORT": str(port),
            "QWEN3_PUBLISH_ADDRESS": "127.0.0.1",
            "STACK_MODELS_DIR": str(models),
            "STANDIN_IMAGE": STANDIN_IMAGE,
            "QWEN3_RERANK_MODEL": f"{MODELS_IN_CONTAINER}/reranker",
            "QWEN3_RAG_EMBEDDING_MODEL": f"{MODELS_IN_CONTAINER}/embedder",
        },
    )
    try:
        try:
            seconds = stack.up()
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            raise AssertionError(f"the stack did not come up healthy: {error}\n{stack.logs()}") from error
        say(pytestconfig, f"stack: `docker compose up` to healthy in {seconds:.0f} s ({stack.project})")
        corpus = stack.wait_for_corpus()
        assert corpus == "indexed", f"the sample corpus: {corpus}\n{stack.logs()}"
        yield stack
    finally:
        stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "20", timeout=180, check=False)
        left = docker("volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={stack.project}")
        assert not left.stdout.strip(), f"volumes left behind: {left.stdout.split()}"
