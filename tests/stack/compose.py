"""A compose project of the demo stack, as the stack test drives it: start, wait, call, read logs."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.containers import REPO, docker

COMPOSE_FILE = REPO / "docker" / "docker-compose.yml"
OVERRIDE_FILE = Path(__file__).with_name("compose.override.yml")
DOCKERFILE = REPO / "docker" / "Dockerfile"
MODELS_IN_CONTAINER = "/local-models"
UP_TIMEOUT_S = 300


@dataclass(frozen=True)
class Stack:
    """A running compose project: the app's URL and the compose command that manages it."""

    project: str
    url: str
    env: dict[str, str]

    def compose(
        self, *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        files = ["-f", str(COMPOSE_FILE), "-f", str(OVERRIDE_FILE)]
        return docker(
            "compose", "-p", self.project, *files, *args, timeout=timeout, check=check, env=self.env
        )

    def up(self) -> float:
        """Start Elasticsearch and the app; seconds until both report healthy."""
        started = time.monotonic()
        self.compose(
            "up", "-d", "--no-build", "--wait", "--wait-timeout", str(UP_TIMEOUT_S), "elasticsearch", "app",
            timeout=UP_TIMEOUT_S + 60,
        )  # fmt: skip
        return time.monotonic() - started

    def logs(self) -> str:
        ps = self.compose("ps", "-a", check=False)
        logs = self.compose("logs", "--no-color", "--tail", "60", check=False)
        return f"{ps.stdout}{ps.stderr}\n{logs.stdout}{logs.stderr}"

    def get(self, path: str) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=30) as response:
            return json.load(response)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.url}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            raise AssertionError(f"POST {path} -> {error.code}: {error.read().decode()[:500]}") from error

    def wait_for_corpus(self, timeout: float = 240) -> str:
        """The sample corpus's state once it is no longer being indexed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            corpus = self.get("/readyz")["corpus"]
            if corpus not in ("not configured", "indexing"):  # the indexing task may not have begun
                return corpus
            time.sleep(1)
        raise AssertionError(f"the sample corpus was still being indexed after {timeout} s:\n{self.logs()}")
