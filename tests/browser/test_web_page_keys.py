"""The page on a server with API keys: the page itself loads without a key, API calls without
one say what is missing, and the key typed into the page is sent as a Bearer token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("selenium", reason="the browser tests need Selenium: pip install selenium")

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from qwen3_rag.server import ServerSettings, create_app
from qwen3_rag.testing import serving
from qwen3_rerank import Qwen3Reranker

pytestmark = pytest.mark.browser

KEY = "page-key-5d2e81"


@pytest.fixture(scope="module")
def keyed_server(tiny_qwen3_dir: Path) -> Iterator[str]:
    with Qwen3Reranker(str(tiny_qwen3_dir), device="cpu") as reranker:
        app = create_app(ServerSettings(rag="off", api_keys=(KEY,)), reranker=reranker)
        with serving(app) as url:
            yield url


def rerank_from_the_page(browser, key: str) -> str:
    field = browser.find_element(By.ID, "api-key")
    field.clear()
    field.send_keys(key)
    browser.find_element(By.ID, "rerank-query").send_keys("capital of France?")
    browser.find_element(By.ID, "rerank-documents").send_keys("Paris is in France.\nBerlin is in Germany.")
    browser.find_element(By.ID, "rerank-submit").click()
    status = browser.find_element(By.ID, "rerank-status")
    WebDriverWait(browser, 60).until(lambda b: "ranked" in status.text or "401" in status.text)
    return status.text


def test_without_a_key_the_page_says_one_is_needed(browser, keyed_server: str) -> None:
    browser.get(keyed_server)
    assert "API key" in rerank_from_the_page(browser, "")


def test_with_the_key_typed_in_the_page_reranking_works(browser, keyed_server: str) -> None:
    browser.get(keyed_server)
    assert "2 documents ranked" in rerank_from_the_page(browser, KEY)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#rerank-results li")) == 2
