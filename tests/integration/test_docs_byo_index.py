"""The examples of docs/bring-your-own-index.md run as written: each ``python`` block is executed
against the test Elasticsearch, with the small local models named in the variables it reads."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from qwen3_rag.testing import minilm_model_dir

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[2] / "docs" / "bring-your-own-index.md"
BLOCK = re.compile(r"^## (?P<title>[^\n]+)\n(?:(?!^## ).)*?^```python\n(?P<code>.*?)^```", re.M | re.S)


def examples() -> dict[str, str]:
    """Each section's first ``python`` block, by section title."""
    return {match["title"]: match["code"] for match in BLOCK.finditer(DOC.read_text(encoding="utf-8"))}


@pytest.fixture
def doc_env(monkeypatch: pytest.MonkeyPatch, es_url: str, tiny_qwen3_dir: Path) -> Iterator[dict[str, str]]:
    suffix = uuid.uuid4().hex[:8]
    names = {"HAYSTACK_INDEX": f"docs-hs-{suffix}", "LLAMAINDEX_INDEX": f"docs-li-{suffix}"}
    env = {
        "ES_URL": es_url,
        "EMBEDDING_MODEL": str(minilm_model_dir()),
        "RERANKER_MODEL": str(tiny_qwen3_dir),
        **names,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield env
    client = Elasticsearch(es_url)
    for index in names.values():
        client.indices.delete(index=index, ignore_unavailable=True)
    client.close()


def test_the_page_has_one_example_per_framework() -> None:
    titles = list(examples())
    assert any("Haystack" in title for title in titles)
    assert any("LlamaIndex" in title for title in titles)


@pytest.mark.parametrize("framework", ["Haystack", "LlamaIndex"])
def test_the_documented_example_runs_and_reranks(
    framework: str, doc_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    (code,) = [code for title, code in examples().items() if title.startswith(framework)]
    exec(compile(code, f"{DOC.name}:{framework}", "exec"), {"__name__": "__doc_example__"})
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2, "the example keeps the two best passages"
    scores = [float(line.split()[0]) for line in lines]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= score <= 1.0 for score in scores)
