"""``--llm openai`` against a local OpenAI-compatible endpoint (as Ollama or vLLM serve it): the
prompt that reaches the model numbers the reranked passages, and its reply is the answer."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from qwen3_rag import RagService, SourceText
from qwen3_rag.testing import offline_settings

REPLY = "Water boils at 100 degrees Celsius at sea level [1]."


class FakeOpenAI(BaseHTTPRequestHandler):
    """Answers ``POST /v1/chat/completions`` with `REPLY` and records each request body."""

    requests: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeOpenAI.requests.append({"path": self.path, "body": body})
        payload = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": REPLY}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
        }
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        """Keep test output quiet."""


def sent_prompt(request: dict[str, Any]) -> str:
    """The text of the last chat message a client sent (a string, or a list of content parts)."""
    content = request["body"]["messages"][-1]["content"]
    return content if isinstance(content, str) else "".join(part.get("text", "") for part in content)


@pytest.fixture
def endpoint() -> Iterator[str]:
    FakeOpenAI.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("framework", ["haystack", "llamaindex"])
def test_the_endpoint_gets_numbered_passages_and_its_reply_is_the_answer(
    framework: str, endpoint: str, tmp_path: Path, tiny_qwen3_dir: Path
) -> None:
    settings = offline_settings(
        tmp_path,
        reranker_model=str(tiny_qwen3_dir),
        framework=framework,
        llm="openai",
        llm_model="local-model",
        llm_base_url=endpoint,
    )
    with RagService(settings) as service:
        service.index_documents(
            [
                SourceText("Water boils at 100 degrees Celsius at sea level.", "water.txt"),
                SourceText("Ice floats because it is less dense than water.", "ice.txt"),
            ]
        )
        answer = service.ask("When does water boil?", top_n=2)

    assert answer.answer == REPLY
    (request,) = FakeOpenAI.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["body"]["model"] == "local-model"
    prompt = sent_prompt(request)
    for number, passage in enumerate(answer.passages, start=1):
        assert f"[{number}] (source: {passage.source})\n{passage.text}" in prompt
    assert "Question: When does water boil?" in prompt


def test_the_whole_haystack_pipeline_generates_from_reranked_documents(
    endpoint: str, tmp_path: Path, tiny_qwen3_dir: Path
) -> None:
    from qwen3_rag.haystack import build_pipeline

    settings = offline_settings(
        tmp_path,
        reranker_model=str(tiny_qwen3_dir),
        llm="openai",
        llm_model="m",
        llm_base_url=endpoint,
        top_n=2,
    )
    with RagService(settings) as service:
        service.index_documents([SourceText("Water boils at 100 degrees Celsius at sea level.", "water.txt")])
        pipeline = build_pipeline(settings, service.retriever, service.reranker)
        question = "When does water boil?"
        result = pipeline.run(
            {
                "retriever": {"query": question},
                "ranker": {"query": question},
                "prompt_builder": {"question": question},
            }
        )
    assert result["llm"]["replies"][0].text == REPLY
    prompt = sent_prompt(FakeOpenAI.requests[0])
    assert "[1] (source: water.txt)\nWater boils at 100 degrees Celsius at sea level." in prompt
