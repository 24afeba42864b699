"""One call through each extra, run inside a fresh virtual environment that has only that extra.

Usage: python .ci/extras_smoke.py EXTRA TINY_MODEL_DIR

Checks that the extra's public surface imports and runs once on a tiny random Qwen3, that the
framework-neutral pipeline modules import, and that the framework the extra is not for is absent.
"""

from __future__ import annotations

import asyncio
import importlib
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution

QUERY = "What is the capital of France?"
DOCUMENTS = ["Bananas are yellow.", "Paris is the capital of France."]
NEUTRAL_MODULES = [
    "qwen3_rag.settings",
    "qwen3_rag.records",
    "qwen3_rag.retrieval",
    "qwen3_rag.fusion",
    "qwen3_rag.embedding",
    "qwen3_rag.service",
    "qwen3_rag.cli",
    "qwen3_rag.stores",
    "qwen3_rag.stores.elasticsearch",
    "qwen3_rag.stores.memory",
    "qwen3_rag.stores.analysis",
    "qwen3_rag.ingest",
    "qwen3_rag.stores.layouts",
]
FRAMEWORKS = {"haystack": "haystack-ai", "llamaindex": "llama-index-core"}


def installed(name: str) -> bool:
    try:
        distribution(name)
    except PackageNotFoundError:
        return False
    return True


def llamaindex(model: str) -> None:
    from llama_index.core.schema import NodeWithScore, TextNode

    from llama_index.postprocessor.qwen3_rerank import Qwen3Rerank

    nodes = [NodeWithScore(node=TextNode(text=text)) for text in DOCUMENTS]
    ranked = Qwen3Rerank(model=model, top_n=1, device="cpu").postprocess_nodes(nodes, query_str=QUERY)
    assert len(ranked) == 1 and 0.0 <= ranked[0].score <= 1.0, ranked


def haystack(model: str) -> None:
    from haystack import Document

    from haystack_integrations.components.rankers.qwen3 import Qwen3Ranker

    ranker = Qwen3Ranker(model=model, top_k=1)
    ranker.warm_up()
    documents = ranker.run(query=QUERY, documents=[Document(content=text) for text in DOCUMENTS])["documents"]
    assert len(documents) == 1 and 0.0 <= documents[0].score <= 1.0, documents


def langchain(model: str) -> None:
    """docs/langchain.md's first example, as written, with the tiny model in its variable."""
    import os
    import re
    from pathlib import Path

    page = Path(__file__).resolve().parents[1] / "docs" / "langchain.md"
    example = re.search(r"^```python\n(.*?)^```", page.read_text(encoding="utf-8"), re.M | re.S)
    assert example, f"no python example in {page}"
    os.environ["RERANKER_MODEL"] = model
    exec(compile(example[1], f"{page.name} (first example)", "exec"), {"__name__": "__doc_example__"})
    from langchain_core.documents import Document

    from langchain_qwen3_rerank import Qwen3Rerank

    ranked = Qwen3Rerank(model=model, top_n=1, device="cpu").compress_documents(
        [Document(page_content=text) for text in DOCUMENTS], QUERY
    )
    assert len(ranked) == 1 and 0.0 <= ranked[0].metadata["relevance_score"] <= 1.0, ranked


def pipelines(framework: str, model: str) -> None:
    from qwen3_rag.records import Passage
    from qwen3_rag.settings import Settings
    from qwen3_rerank import Qwen3Reranker

    for name in NEUTRAL_MODULES:
        importlib.import_module(name)
    module = importlib.import_module(f"qwen3_rag.{framework}")
    stages_class = getattr(module, "HaystackStages" if framework == "haystack" else "LlamaIndexStages")
    passages = [Passage(str(i), text, f"{i}.md", 0.0, i + 1) for i, text in enumerate(DOCUMENTS)]
    settings = Settings.from_env(environ={}, framework=framework, device="cpu")
    with Qwen3Reranker(model, device="cpu") as reranker:
        ranked = stages_class(settings, reranker).rerank(QUERY, passages, 1)
    assert len(ranked) == 1, ranked


def server(model: str) -> None:
    import httpx

    from qwen3_rag.server import ServerSettings, create_app
    from qwen3_rerank import Qwen3Reranker

    async def call() -> dict:
        with Qwen3Reranker(model, device="cpu") as reranker:
            app = create_app(ServerSettings(rag="off"), reranker=reranker)
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
                    response = await client.post("/v1/rerank", json={"query": QUERY, "documents": DOCUMENTS})
                    response.raise_for_status()
                    return response.json()

    results = asyncio.run(call())["results"]
    assert len(results) == 2, results


def core(model: str) -> None:
    """The core alone: it reranks, ``--help`` works, and a pipeline command names the extra it needs."""
    from qwen3_rerank import Qwen3Reranker

    with Qwen3Reranker(model, device="cpu") as reranker:
        assert reranker.rerank(QUERY, DOCUMENTS, top_n=1)[0].index in (0, 1)
    cli = [sys.executable, "-c", "from qwen3_rerank.cli import main; main()"]
    listed = subprocess.run([*cli, "--help"], capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and "ask" in listed.stdout, listed.stdout + listed.stderr
    asked = subprocess.run([*cli, "ask", "anything"], capture_output=True, text=True, timeout=300)
    output = " ".join((asked.stdout + asked.stderr).split())  # rich wraps long lines
    assert asked.returncode == 1 and "pip install 'qwen3-rerank[" in output, output
    assert "Traceback" not in output, output


def main(extra: str, model: str) -> None:
    absent = {
        "core": ["haystack", "llamaindex"],
        "llamaindex": ["haystack"],
        "llamaindex-pipelines": ["haystack"],
        "haystack": ["llamaindex"],
        "langchain": ["haystack", "llamaindex"],
        "haystack-pipelines": ["llamaindex"],
        "server": ["haystack", "llamaindex"],
    }[extra]
    for framework in absent:
        assert not installed(FRAMEWORKS[framework]), f"[{extra}] installed {FRAMEWORKS[framework]}"
    if extra == "core":
        core(model)
    elif extra == "llamaindex":
        llamaindex(model)
    elif extra == "haystack":
        haystack(model)
    elif extra == "langchain":
        langchain(model)
    elif extra.endswith("-pipelines"):
        framework = extra.removesuffix("-pipelines")
        (llamaindex if framework == "llamaindex" else haystack)(model)
        pipelines(framework, model)
    else:
        server(model)
    print(f"[{extra}] ok: imports, one call, and without {', '.join(FRAMEWORKS[f] for f in absent)}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
