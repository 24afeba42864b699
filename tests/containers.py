"""The container engine as the tests see it: does one answer, and the images built locally for it.

Shared by the stack test (tests/stack) and the containerized Elasticsearch of the integration tests.
Images that no registry can give us here are built by ``docker/build-base-images.sh`` (which
``.ci/container-engine`` runs); ``ensure_local_images`` runs it again on demand, a no-op when
they are present.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STANDIN_IMAGE = os.environ.get("STANDIN_IMAGE", "qwen3-rerank/es-standin:local")
"""The Elasticsearch-compatible stand-in (noida-db) as an image; see docker/es-standin/Dockerfile."""


def docker(
    *args: str, timeout: float = 120, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the Docker CLI in the repository root; on failure the error carries its output."""
    result = subprocess.run(
        ["docker", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"`docker {' '.join(args)}` exited with {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def engine_problem() -> str | None:
    """Why no container engine can be used here, or ``None`` when one answers."""
    if shutil.which("docker") is None:
        return "no `docker` command (bash .ci/container-engine installs one as root on Debian)"
    try:
        info = docker("info", "--format", "{{.ServerVersion}}", timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 20 s"
    if info.returncode != 0:
        return f"no container engine answers: {(info.stderr or info.stdout).strip()[:300]}"
    return None


def has_image(name: str) -> bool:
    return docker("image", "inspect", name, timeout=30, check=False).returncode == 0


def ensure_local_images() -> None:
    """The app's base image and the stand-in's image, built from Debian packages and PyPI if missing."""
    subprocess.run(
        ["bash", str(REPO / "docker" / "build-base-images.sh")],
        cwd=REPO,
        check=True,
        timeout=1200,
        env=os.environ | {"STANDIN_IMAGE": STANDIN_IMAGE},
    )


def say(pytestconfig: pytest.Config, line: str) -> None:
    """Write ``line`` to the run's output even under ``-q`` and output capturing (which image, which
    URL, how long a build took), as pytest's own live logging does."""
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    if capture is None:
        reporter.write_line(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)
