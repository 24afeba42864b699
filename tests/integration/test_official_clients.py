"""The official rerank clients of each ecosystem against the real server, with their defaults.

Each component is pointed at a live `qwen3-rerank serve` (uvicorn on 127.0.0.1, tiny random
Qwen3 reranker, an API key) and sends what it sends to Cohere or Jina: its own default model
name (`rerank-v3.5`, `rerank-english-v3.0`, `jina-reranker-v1-base-en`), or for clients without
a default the name Cohere documents. The server answers to those names because they are set as
aliases (``QWEN3_SERVER_SERVED_MODEL_NAMES``, as in docs/server.md); each component is also run
with the served model's own name. Either way the scores and their order must be those of the same
model in process (`Qwen3Reranker.score`), so the interoperability table in docs/server.md is a
tested promise, not a hope.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qwen3_rag.server import ServerSettings, create_app
from qwen3_rag.testing import serving
from qwen3_rerank import Qwen3Reranker
from qwen3_rerank.reranker import best_first

pytestmark = pytest.mark.integration

API_KEY = "official-clients-test-key"
QUERY = "Which planet is known for its rings?"
DOCUMENTS = [
    "Mars is a cold desert world with a thin atmosphere.",
    "Saturn is famous for its bright, wide system of icy rings.",
    "Bread rises because yeast makes carbon dioxide.",
    "Jupiter is the largest planet and has faint rings too.",
    "The Nile flows north through eleven countries.",
]
# The names these clients send by default, or (clients without a default) the name Cohere documents.
COHERE_DOCUMENTED = "rerank-v3.5"
HAYSTACK_COHERE_DEFAULT = "rerank-v3.5"
LLAMAINDEX_COHERE_DEFAULT = "rerank-english-v3.0"
JINA_DEFAULT = "jina-reranker-v1-base-en"
ALIASES = sorted({COHERE_DOCUMENTED, HAYSTACK_COHERE_DEFAULT, LLAMAINDEX_COHERE_DEFAULT, JINA_DEFAULT})


@pytest.fixture(scope="module")
def reranker(tiny_qwen3_dir: Path) -> Iterator[Qwen3Reranker]:
    with Qwen3Reranker(str(tiny_qwen3_dir), device="cpu") as reranker:
        yield reranker


@pytest.fixture(scope="module")
def expected(reranker: Qwen3Reranker) -> list[float]:
    """The in-process scores, in document order; distinct, so that their order is a real test."""
    scores = reranker.score(QUERY, DOCUMENTS)
    assert len({round(score, 4) for score in scores}) == len(scores), scores
    return scores


@pytest.fixture(scope="module")
def server_url(reranker: Qwen3Reranker) -> Iterator[str]:
    """The real app behind uvicorn, with an API key and the clients' default names as aliases."""
    environ = {"QWEN3_SERVER_SERVED_MODEL_NAMES": ",".join(ALIASES), "QWEN3_SERVER_API_KEYS": API_KEY}
    settings = ServerSettings.from_env(environ, rag="off", device="cpu")
    with serving(create_app(settings, reranker=reranker)) as url:
        yield url


@pytest.fixture(params=["default name", "served name"])
def name_case(request: pytest.FixtureRequest) -> str:
    """``default name``: the client as a user leaves it; ``served name``: ``model=`` the last path
    part of the served model, which the server accepts without any alias."""
    return request.param


def served_name(reranker: Qwen3Reranker) -> str:
    return reranker.model_id.rstrip("/").rsplit("/", 1)[-1]


def model_argument(name_case: str, reranker: Qwen3Reranker) -> dict[str, str]:
    """No ``model=`` for a client's own default; the served name otherwise."""
    return {} if name_case == "default name" else {"model": served_name(reranker)}


def model_name(name_case: str, reranker: Qwen3Reranker, documented: str) -> str:
    """The model a client without a default is given: the documented alias, or the served name."""
    return documented if name_case == "default name" else served_name(reranker)


def assert_same_ranking(ranked: list[tuple[int, float]], expected: list[float]) -> None:
    """``(document index, score)`` best first, as the client returned them, equal the model's own."""
    assert [index for index, _ in ranked] == best_first(expected)
    assert [score for _, score in ranked] == pytest.approx(
        [expected[index] for index in best_first(expected)], abs=1e-5
    )


def by_text(text: str) -> int:
    return DOCUMENTS.index(text)


# Cohere's SDK: v1 (`Client.rerank`), v2 (`ClientV2.rerank`, posting /v2/rerank) and async.


def test_cohere_sdk_v1(
    server_url: str, reranker: Qwen3Reranker, expected: list[float], name_case: str
) -> None:
    cohere = pytest.importorskip("cohere")
    client = cohere.Client(api_key=API_KEY, base_url=server_url)
    model = model_name(name_case, reranker, COHERE_DOCUMENTED)
    response = client.rerank(model=model, query=QUERY, documents=DOCUMENTS, top_n=len(DOCUMENTS))
    assert_same_ranking([(r.index, r.relevance_score) for r in response.results], expected)


def test_cohere_sdk_v2(
    server_url: str, reranker: Qwen3Reranker, expected: list[float], name_case: str
) -> None:
    cohere = pytest.importorskip("cohere")
    client = cohere.ClientV2(api_key=API_KEY, base_url=server_url)
    model = model_name(name_case, reranker, COHERE_DOCUMENTED)
    response = client.rerank(model=model, query=QUERY, documents=DOCUMENTS, top_n=len(DOCUMENTS))
    assert_same_ranking([(r.index, r.relevance_score) for r in response.results], expected)


def test_cohere_sdk_async(
    server_url: str, reranker: Qwen3Reranker, expected: list[float], name_case: str
) -> None:
    cohere = pytest.importorskip("cohere")
    model = model_name(name_case, reranker, COHERE_DOCUMENTED)

    async def rerank_concurrently() -> list[Any]:
        client = cohere.AsyncClientV2(api_key=API_KEY, base_url=server_url)
        calls = [client.rerank(model=model, query=QUERY, documents=DOCUMENTS) for _ in range(3)]
        return await asyncio.gather(*calls)

    for response in asyncio.run(rerank_concurrently()):
        assert_same_ranking([(r.index, r.relevance_score) for r in response.results], expected)


# Haystack: `CohereRanker` (cohere-haystack) and `JinaRanker` (jina-haystack).


def test_haystack_cohere_ranker(
    server_url: str, reranker: Qwen3Reranker, expected: list[float], name_case: str
) -> None:
    ranker_module = pytest.importorskip("haystack_integrations.components.rankers.cohere")
    from haystack import Document
    from haystack.utils import Secret

    ranker = ranker_module.CohereRanker(
        api_key=Secret.from_token(API_KEY),
        api_base_url=server_url,
        top_k=len(DOCUMENTS),
        **model_argument(name_case, reranker),
    )
    assert name_case != "default name" or ranker.model_name == HAYSTACK_COHERE_DEFAULT
    documents = [Document(content=text) for text in DOCUMENTS]
    ranked = ranker.run(query=QUERY, documents=documents)["documents"]
    assert_same_ranking([(by_text(d.content), d.score) for d in ranked], expected)
    ranked_async = asyncio.run(ranker.run_async(query=QUERY, documents=documents))["documents"]
    assert_same_ranking([(by_text(d.content), d.score) for d in ranked_async], expected)


def test_haystack_jina_ranker(
    server_url: str, reranker: Qwen3Reranker, expected: list[float], name_case: str
) -> None:
    ranker_module = pytest.importorskip("haystack_integrations.components.rankers.jina")
    from haystack import Document
    from haystack.utils import Secret

    ranker = ranker_module.JinaRanker(
        api_key=Secret.from_token(API_KEY),
        base_url=f"{server_url}/v1/rerank",
        **model_argument(name_case, reranker),
    )
    assert name_case != "default name" or ranker.model == JINA_DEFAULT
    result = ranker.run(query=QUERY, documents=[Document(content=text) for text in DOCUMENTS])
    assert_same_ranking([(by_text(d.content), d.score) for d in result["documents"]], expected)
    assert result["meta"]["model"] and result["meta"]["usage"], "it copies both from the response"


# LlamaIndex: `CohereRerank` and `JinaRerank` node postprocessors.


def llamaindex_nodes() -> list[Any]:
    from llama_index.core.schema import NodeWithScore, TextNode

    return [NodeWithScore(node=TextNode(text=text), score=0.0) for text in DOCUMENTS]


def test_llamaindex_cohere_rerank(
    server_url: str, reranker: Qwen3Reranker, expected: list[float], name_case: str
) -> None:
    postprocessor = pytest.importorskip("llama_index.postprocessor.cohere_rerank")
    rerank = postprocessor.CohereRerank(
        api_key=API_KEY,
        base_url=server_url,
        top_n=len(DOCUMENTS),
        max_retries=1,
        **model_argument(name_case, reranker),
    )
    assert name_case != "default name" or rerank.model == LLAMAINDEX_COHERE_DEFAULT
    ranked = rerank.postprocess_nodes(llamaindex_nodes(), query_str=QUERY)
    assert_same_ranking([(by_text(n.node.get_content()), n.score) for n in ranked], expected)


def test_llamaindex_jina_rerank(
    server_url: str, reranker: Qwen3Reranker, expected: list[float], name_case: str
) -> None:
    postprocessor = pytest.importorskip("llama_index.postprocessor.jinaai_rerank")
    rerank = postprocessor.JinaRerank(
        api_key=API_KEY,
        base_url=f"{server_url}/v1",
        top_n=len(DOCUMENTS),
        **model_argument(name_case, reranker),
    )
    assert name_case != "default name" or rerank.model == JINA_DEFAULT
    ranked = rerank.postprocess_nodes(llamaindex_nodes(), query_str=QUERY)
    assert_same_ranking([(by_text(n.node.get_content()), n.score) for n in ranked], expected)


# LangChain: `CohereRerank` (langchain-cohere), a document compressor with no default model.


def test_langchain_cohere_rerank(
    server_url: str, reranker: Qwen3Reranker, expected: list[float], name_case: str
) -> None:
    langchain_cohere = pytest.importorskip("langchain_cohere")
    from langchain_core.documents import Document

    compressor = langchain_cohere.CohereRerank(
        cohere_api_key=API_KEY,
        base_url=server_url,
        model=model_name(name_case, reranker, COHERE_DOCUMENTED),
        top_n=len(DOCUMENTS),
    )
    documents = [Document(page_content=text, metadata={"n": n}) for n, text in enumerate(DOCUMENTS)]
    compressed = compressor.compress_documents(documents, QUERY)
    assert_same_ranking([(d.metadata["n"], d.metadata["relevance_score"]) for d in compressed], expected)
    assert all("relevance_score" not in d.metadata for d in documents), "the caller's documents are kept"


# Text Embeddings Inference's format: LlamaIndex's `TextEmbeddingInference` postprocessor, and
# the plain `requests` calls docs/server.md shows for TEI's `/rerank` and vLLM's score API.


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}


def test_llamaindex_tei_rerank(server_url: str, expected: list[float]) -> None:
    postprocessor = pytest.importorskip("llama_index.postprocessor.tei_rerank")
    rerank = postprocessor.TextEmbeddingInference(
        base_url=server_url, top_n=len(DOCUMENTS), auth_token=f"Bearer {API_KEY}"
    )
    ranked = rerank.postprocess_nodes(llamaindex_nodes(), query_str=QUERY)
    assert_same_ranking([(by_text(n.node.get_content()), n.score) for n in ranked], expected)


def test_tei_rerank_requests(server_url: str, expected: list[float]) -> None:
    """TEI's documented call: a bare list, best first; ``raw_scores`` the logits, ``return_text``."""
    import requests

    url = f"{server_url}/rerank"
    ranks = requests.post(url, json={"query": QUERY, "texts": DOCUMENTS}, headers=auth(), timeout=60).json()
    assert_same_ranking([(r["index"], r["score"]) for r in ranks], expected)
    assert all("text" not in r for r in ranks)

    body = {"query": QUERY, "texts": DOCUMENTS, "raw_scores": True, "return_text": True, "truncate": True}
    ranks = requests.post(url, json=body, headers=auth(), timeout=60).json()
    assert [r["text"] for r in ranks] == [DOCUMENTS[r["index"]] for r in ranks]
    logits = [math.log(p / (1 - p)) for p in expected]
    assert [r["index"] for r in ranks] == best_first(expected)
    assert [r["score"] for r in ranks] == pytest.approx([logits[r["index"]] for r in ranks], abs=1e-3)


def test_tei_rerank_errors(server_url: str) -> None:
    """TEI's error body, ``{"error", "error_type"}``, for what TEI itself refuses; keys as everywhere."""
    import requests

    url = f"{server_url}/rerank"
    long_text = "tea " * 5000  # over the server's 4096 tokens per document
    refused = requests.post(
        url,
        json={"query": QUERY, "texts": ["short", long_text], "truncate": False},
        headers=auth(),
        timeout=60,
    )
    assert refused.status_code == 422
    assert refused.json()["error_type"] == "validation" and "texts.1" in refused.json()["error"]
    cut = requests.post(url, json={"query": QUERY, "texts": ["short", long_text]}, headers=auth(), timeout=60)
    assert cut.status_code == 200 and len(cut.json()) == 2, "unset `truncate` cuts, as --auto-truncate does"
    strict = requests.post(
        url, json={"query": QUERY, "texts": DOCUMENTS, "raw_scores": "yes"}, headers=auth()
    )
    assert strict.status_code == 422 and strict.json()["error_type"] == "validation"
    assert "raw_scores" in strict.json()["error"]
    assert requests.post(url, json={"query": QUERY, "texts": DOCUMENTS}, timeout=60).status_code == 401


def test_vllm_score_requests(server_url: str, reranker: Qwen3Reranker, expected: list[float]) -> None:
    """vLLM's score API as its docs call it: one ``text_1`` against a list, then pairs."""
    import requests

    body = {"model": served_name(reranker), "text_1": QUERY, "text_2": DOCUMENTS}
    answer = requests.post(f"{server_url}/score", json=body, headers=auth(), timeout=60).json()
    assert answer["object"] == "list" and answer["model"] == served_name(reranker)
    assert [d["index"] for d in answer["data"]] == list(range(len(DOCUMENTS)))
    assert all(d["object"] == "score" for d in answer["data"])
    assert [d["score"] for d in answer["data"]] == pytest.approx(expected, abs=1e-5)
    assert answer["usage"]["prompt_tokens"] == answer["usage"]["total_tokens"] > 0

    other = "Which river flows north?"
    pairs = {"text_1": [QUERY, other, QUERY], "text_2": [DOCUMENTS[1], DOCUMENTS[4], DOCUMENTS[0]]}
    answer = requests.post(f"{server_url}/v1/score", json=pairs, headers=auth(), timeout=60).json()
    river = reranker.score(other, [DOCUMENTS[4]])[0]
    assert [d["score"] for d in answer["data"]] == pytest.approx([expected[1], river, expected[0]], abs=1e-5)

    mismatch = {"text_1": [QUERY, other], "text_2": DOCUMENTS}
    refused = requests.post(f"{server_url}/v1/score", json=mismatch, headers=auth(), timeout=60)
    assert refused.status_code == 422 and "1:1, 1:N or N:N" in refused.text
    unknown = requests.post(f"{server_url}/score", json={**body, "model": "bge-reranker"}, headers=auth())
    assert unknown.status_code == 404


def test_vllm_rerank_requests(server_url: str, reranker: Qwen3Reranker, expected: list[float]) -> None:
    """vLLM's (and Jina's) ``/rerank`` with ``documents`` shares the path with TEI's ``texts``."""
    import requests

    body = {"model": served_name(reranker), "query": QUERY, "documents": DOCUMENTS, "top_n": 2}
    answer = requests.post(f"{server_url}/rerank", json=body, headers=auth(), timeout=60).json()
    results = answer["results"]
    assert [r["index"] for r in results] == best_first(expected, 2)
    assert [r["relevance_score"] for r in results] == pytest.approx(
        [expected[i] for i in best_first(expected, 2)]
    )
    assert answer["model"] == served_name(reranker)
