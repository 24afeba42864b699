"""The third hardening round (issue 26), as a careless operator and a hostile client would try it:
a write while another process writes the store, request smuggling shapes on a raw socket,
crafted field names against redaction, lone surrogates in echoed fields, secrets as request ids."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from qwen3_rag.records import Chunk
from qwen3_rag.server import ServerSettings, create_app
from qwen3_rag.stores.memory import MemoryStore
from qwen3_rerank import Qwen3Reranker
from tests.server_client import LocalTestClient
from tests.server_fakes import FakePipeline

DOCUMENTS = {"documents": [{"text": "Water boils at 100 °C.", "source": "water.md"}]}


@pytest.fixture(scope="module")
def reranker(tiny_qwen3_dir: Path) -> Iterator[Qwen3Reranker]:
    with Qwen3Reranker(str(tiny_qwen3_dir), device="cpu") as reranker:
        yield reranker


def rag_app(reranker: Qwen3Reranker, pipeline: FakePipeline, **settings: Any) -> Any:
    return create_app(
        ServerSettings(rag="on", **settings), reranker=reranker, rag_factory=lambda *_: pipeline
    )


# --- 1. a write while another process writes the embedded store ------------------------------------


class StorePipeline(FakePipeline):
    """Writes each posted document into a real embedded store (a vector per chunk, no model)."""

    def __init__(self, store: MemoryStore) -> None:
        super().__init__()
        self.store = store

    def index_documents(self, documents: Iterable[Any]) -> dict[str, int]:
        chunks = [Chunk.create(document.text, document.source, 0) for document in documents]
        self.store.write(chunks, [[1.0, 0.0, 0.0]] * len(chunks))
        return {"files": len(chunks), "chunks": len(chunks)}

    def document_count(self) -> int:
        return self.store.count()


def test_a_write_while_another_process_writes_the_store_gets_503_with_retry_after(
    reranker: Qwen3Reranker, tmp_path: Path
) -> None:
    other_process = MemoryStore(tmp_path, "shared")  # its own lock file handle, as a CLI has
    pipeline = StorePipeline(MemoryStore(tmp_path, "shared", write_lock_timeout_s=0))
    app = rag_app(reranker, pipeline, allow_writes=True, retry_after_seconds=3)
    with LocalTestClient(app) as client:
        with other_process.bulk():  # `qwen3-rerank index` running
            busy = client.post("/v1/documents", json=DOCUMENTS)
        after = client.post("/v1/documents", json=DOCUMENTS)
    assert busy.status_code == 503, busy.text
    assert busy.headers["retry-after"] == "3"
    assert "being written by pid" in busy.json()["detail"]
    assert after.status_code == 200 and after.json()["document_count"] == 1
