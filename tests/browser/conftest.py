"""A live server on 127.0.0.1 and a headless Chromium driven by Selenium.

The server runs the real app in a background thread (`qwen3_rag.testing.serving`) with a tiny random
Qwen3 reranker and the embedded pipeline over the sample corpus. Chromium and its driver come
from Debian (``apt-get install -y chromium chromium-driver``); nothing is downloaded, and the
tests skip, saying so, where they are missing.
"""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from qwen3_rag.server import ServerSettings, create_app
from qwen3_rag.service import RagService
from qwen3_rag.testing import SAMPLES_DIR, offline_settings, serving
from qwen3_rerank import Qwen3Reranker
from tests.polling import wait_until

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory, tiny_qwen3_dir: Path) -> Iterator[str]:
    """The app's base URL; the sample corpus is indexed before the first test runs."""
    store = tmp_path_factory.mktemp("browser-store")
    with Qwen3Reranker(str(tiny_qwen3_dir), device="cpu") as reranker:
        app = create_app(
            ServerSettings(rag="on", sample_corpus=SAMPLES_DIR, max_document_chars=500),
            reranker=reranker,
            rag_factory=lambda settings, served: RagService(
                offline_settings(store, reranker_model=served.model_id), reranker=served
            ),
        )
        with serving(app) as url:
            _wait_for_corpus(url)
            yield url


def _wait_for_corpus(url: str) -> None:
    def indexed() -> bool:
        # OSError (not listening yet, or 503 while starting) counts as not yet.
        with urllib.request.urlopen(f"{url}/readyz", timeout=5) as response:
            return json.load(response)["corpus"] == "indexed"

    wait_until(indexed, f"the server at {url} to index the sample corpus", timeout=300, interval=0.05)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless Chromium through chromedriver, both from the system packages."""
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("needs Chromium and chromedriver: apt-get install -y chromium chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs Selenium: pip install selenium")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
