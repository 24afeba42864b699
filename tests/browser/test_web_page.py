"""The demo page in a real browser: type, submit, read what the page shows."""

from __future__ import annotations

import json
import urllib.request

import pytest

pytest.importorskip("selenium", reason="the browser tests need Selenium: pip install selenium")

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.browser

DOCUMENTS = [
    "Paris is the capital and largest city of France.",
    "Bananas are rich in potassium.",
    "Berlin is the capital of Germany.",
    "Mount Everest is the highest mountain on Earth.",
]


def api_rerank(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{url}/v1/rerank", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def wait(browser, seconds: float = 60) -> WebDriverWait:
    return WebDriverWait(browser, seconds)


def fill(browser, element_id: str, text: str) -> None:
    field = browser.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(text)


def test_rerank_shows_the_documents_ranked_with_score_bars(browser, live_server: str) -> None:
    browser.get(live_server)
    fill(browser, "rerank-query", "What is the capital of France?")
    fill(browser, "rerank-documents", "\n".join(DOCUMENTS))
    browser.find_element(By.ID, "rerank-submit").click()
    items = wait(browser).until(
        lambda b: (
            (found := b.find_elements(By.CSS_SELECTOR, "#rerank-results li")) and len(found) == 4 and found
        )
    )

    expected = api_rerank(live_server, {"query": "What is the capital of France?", "documents": DOCUMENTS})
    shown = [
        (int(item.get_attribute("data-index")), item.find_element(By.CLASS_NAME, "text").text)
        for item in items
    ]
    assert shown == [(r["index"], DOCUMENTS[r["index"]]) for r in expected["results"]]
    scores = [float(item.find_element(By.CLASS_NAME, "score").text) for item in items]
    assert scores == pytest.approx([r["relevance_score"] for r in expected["results"]], abs=1e-4)
    widths = [item.find_element(By.CLASS_NAME, "bar").value_of_css_property("width") for item in items]
    assert [float(w.removesuffix("px")) for w in widths] == sorted(
        (float(w.removesuffix("px")) for w in widths), reverse=True
    ), "bars shrink down the ranking"
    assert "4 documents ranked" in browser.find_element(By.ID, "rerank-status").text


def test_the_header_names_the_served_model(browser, live_server: str) -> None:
    browser.get(live_server)
    line = browser.find_element(By.ID, "model-line")
    wait(browser).until(lambda b: " on cpu" in line.text)
    with urllib.request.urlopen(f"{live_server}/readyz", timeout=10) as response:
        assert json.load(response)["model"] in line.text
    assert "Ask ready (sample corpus indexed)" in line.text


def test_instruction_changes_the_scores_shown(browser, live_server: str) -> None:
    instruction = "Judge whether the document mentions a fruit"
    browser.get(live_server)
    fill(browser, "rerank-query", "potassium")
    fill(browser, "rerank-documents", "\n".join(DOCUMENTS))
    fill(browser, "rerank-instruction", instruction)
    browser.find_element(By.ID, "rerank-submit").click()
    items = wait(browser).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#rerank-results li"))
    expected = api_rerank(
        live_server, {"query": "potassium", "documents": DOCUMENTS, "instruction": instruction}
    )
    assert float(items[0].find_element(By.CLASS_NAME, "score").text) == pytest.approx(
        expected["results"][0]["relevance_score"], abs=1e-4
    )


def test_a_refused_request_shows_the_servers_reason(browser, live_server: str) -> None:
    browser.get(live_server)
    fill(browser, "rerank-query", "anything")
    fill(browser, "rerank-documents", "x" * 600)  # the live server allows 500 characters
    browser.find_element(By.ID, "rerank-submit").click()
    status = browser.find_element(By.ID, "rerank-status")
    wait(browser).until(lambda b: "422" in status.text)
    assert "at most 500 characters" in status.text
    assert "error" in status.get_attribute("class")
    assert browser.find_elements(By.CSS_SELECTOR, "#rerank-results li") == []


def test_ask_shows_an_answer_citing_numbered_passages(browser, live_server: str) -> None:
    browser.get(live_server)
    browser.find_element(By.ID, "tab-ask").click()
    wait(browser).until(expected_conditions.visibility_of_element_located((By.ID, "ask-question")))
    assert not browser.find_element(By.ID, "panel-rerank").is_displayed()
    fill(browser, "ask-question", "At what temperature does water boil at sea level?")
    browser.find_element(By.ID, "ask-submit").click()
    passages = wait(browser).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#ask-passages li"))

    assert [p.get_attribute("id") for p in passages] == [f"passage-{n}" for n in range(1, len(passages) + 1)]
    assert all(p.find_element(By.CLASS_NAME, "source").text.split(" · ")[0] for p in passages)
    citations = browser.find_elements(By.CSS_SELECTOR, "#ask-answer a.citation")
    assert citations, "the answer links its [n] citations to the passages"
    assert citations[0].text == "[1]" and citations[0].get_attribute("href").endswith("#passage-1")
    first_passage = passages[0].find_element(By.CLASS_NAME, "text").text
    answer = browser.find_element(By.ID, "ask-answer").text
    assert " ".join(first_passage.split()) in " ".join(answer.split()), (
        "without an LLM the answer quotes them"
    )
