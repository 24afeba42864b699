"""`docker compose up` for real: the services come up healthy, the API answers from the container,
the page works in a browser, and the index lives on a volume that outlives the containers."""

from __future__ import annotations

import json

import pytest

from tests.containers import say

from .compose import MODELS_IN_CONTAINER, Stack

pytestmark = pytest.mark.stack

DOCUMENTS = [
    "Paris is the capital and largest city of France.",
    "Bananas are rich in potassium.",
    "Mount Everest is the highest mountain on Earth.",
]


def _services(stack: Stack) -> dict[str, dict]:
    # Compose 2.21+ prints one JSON object a line.
    lines = stack.compose("ps", "--format", "json").stdout.splitlines()
    return {entry["Service"]: entry for entry in map(json.loads, filter(None, lines))}


def test_elasticsearch_and_the_app_are_running_and_healthy(stack: Stack) -> None:
    services = _services(stack)
    assert {name: services[name]["Health"] for name in ("elasticsearch", "app")} == {
        "elasticsearch": "healthy",
        "app": "healthy",
    }
    assert set(services) == {"elasticsearch", "app"}, (
        "the optional LLM services start only with --profile llm"
    )


def test_the_app_runs_as_an_unprivileged_user(stack: Stack) -> None:
    assert stack.compose("exec", "-T", "app", "id", "-u").stdout.strip() == "10001"


def test_the_sample_corpus_is_indexed_into_elasticsearch_over_the_compose_network(stack: Stack) -> None:
    count = stack.compose(
        "exec", "-T", "elasticsearch", "curl", "-fsS", "http://localhost:9200/qwen3-rag/_count"
    )
    assert json.loads(count.stdout)["count"] > 0
    assert stack.get("/readyz")["corpus"] in ("indexed", "already indexed")


def test_rerank_answers_from_the_container_with_the_mounted_model(stack: Stack) -> None:
    body = stack.post("/v1/rerank", {"query": "What is the capital of France?", "documents": DOCUMENTS})
    assert body["model"] == "reranker", "the served name, the mounted path's last part, not the path"
    assert sorted(result["index"] for result in body["results"]) == [0, 1, 2]
    scores = [result["relevance_score"] for result in body["results"]]
    assert scores == sorted(scores, reverse=True) and all(0 < score < 1 for score in scores)


def test_documents_indexed_over_http_are_retrieved_and_cited_by_ask(stack: Stack) -> None:
    indexed = stack.post(
        "/v1/documents",
        {"documents": [{"text": "The zorblax reactor runs on purple quartz.", "source": "zorblax.txt"}]},
    )
    assert indexed["indexed"]["chunks"] == 1
    # The override keeps every candidate: the tiny reranker's order is random, BM25 on "zorblax" is not.
    answer = stack.post("/v1/ask", {"question": "What does the zorblax reactor run on?"})
    sources = [passage["source"] for passage in answer["passages"]]
    assert "zorblax.txt" in sources
    for passage in answer["passages"]:
        assert f"[{passage['rank']}]" in answer["answer"], "the answer cites every passage it lists"
    assert "zorblax.txt" in answer["answer"]


def test_the_page_asks_and_shows_cited_passages_in_chromium(stack: Stack, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    browser.get(stack.url)
    line = browser.find_element(By.ID, "model-line")
    wait.until(lambda _: " on cpu" in line.text)
    assert "reranker" in line.text and MODELS_IN_CONTAINER not in line.text, "no local path on the page"
    browser.find_element(By.ID, "tab-ask").click()
    question = wait.until(expected_conditions.visibility_of_element_located((By.ID, "ask-question")))
    question.send_keys("At what temperature does water boil at sea level?")
    browser.find_element(By.ID, "ask-submit").click()
    passages = wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#ask-passages li"))
    assert [p.get_attribute("id") for p in passages] == [f"passage-{n}" for n in range(1, len(passages) + 1)]
    citations = browser.find_elements(By.CSS_SELECTOR, "#ask-answer a.citation")
    assert citations and citations[0].get_attribute("href").endswith("#passage-1")


def test_the_index_survives_recreating_the_containers(stack: Stack, pytestconfig: pytest.Config) -> None:
    before = stack.post(
        "/v1/documents", {"documents": [{"text": "Quokkas live on Rottnest Island.", "source": "quokka.txt"}]}
    )

    stack.compose("down", "--timeout", "20", timeout=180)  # containers gone, volumes kept
    seconds = stack.up()
    say(pytestconfig, f"stack: recreated and healthy again in {seconds:.0f} s")

    assert stack.wait_for_corpus() == "already indexed", "a restart must not index the sample corpus again"
    answer = stack.post("/v1/ask", {"question": "Where do quokkas live?"})
    assert "quokka.txt" in [passage["source"] for passage in answer["passages"]]
    after = stack.post(
        "/v1/documents", {"documents": [{"text": "Wombats dig burrows.", "source": "wombat.txt"}]}
    )
    assert after["document_count"] == before["document_count"] + 1
