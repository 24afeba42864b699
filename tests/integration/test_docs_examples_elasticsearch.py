"""The Python examples of docs/langchain.md that need Elasticsearch run as written against the test
Elasticsearch (tests/unit/test_docs_examples.py runs the others and skips these)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

pytestmark = pytest.mark.integration

PAGE = Path(__file__).resolve().parents[2] / "docs" / "langchain.md"
BLOCK = re.compile(r"^```python\n(?P<code>.*?)^```", re.M | re.S)


def elasticsearch_examples() -> list[str]:
    return [m["code"] for m in BLOCK.finditer(PAGE.read_text(encoding="utf-8")) if "ES_URL" in m["code"]]


def test_the_page_has_an_elasticsearch_example() -> None:
    assert elasticsearch_examples()


def test_the_elasticsearch_example_runs_and_reranks(
    es_url: str,
    index_name: str,
    tiny_qwen3_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ES_URL", es_url)
    monkeypatch.setenv("LANGCHAIN_INDEX", index_name)
    monkeypatch.setenv("RERANKER_MODEL", str(tiny_qwen3_dir))
    for code in elasticsearch_examples():
        exec(compile(code, f"{PAGE.name} (Elasticsearch)", "exec"), {"__name__": "__doc_example__"})
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2, "the example keeps the two best documents"
    scores = [float(line.split()[0]) for line in lines]
    assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
    client = Elasticsearch(es_url)
    assert client.count(index=index_name)["count"] == 4
    client.close()
