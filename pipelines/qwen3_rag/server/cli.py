"""``qwen3-rerank serve``: run the HTTP API and the web page with uvicorn.

Registered through the ``qwen3_rerank.cli`` entry-point group; fastapi and uvicorn are imported
inside the command, so the rest of the CLI works without the ``server`` extra.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from .settings import ServerSettings


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to the ``qwen3-rerank`` CLI."""
    app.command()(serve)


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (env QWEN3_SERVER_HOST, default 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port (env QWEN3_SERVER_PORT, default 8000).")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Reranker Hub id or directory, fixed for the server's life (env QWEN3_RERANK_MODEL)."
        ),
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="cpu, cuda, cuda:N or mps (env QWEN3_RAG_DEVICE).")
    ] = None,
    rag: Annotated[
        str | None,
        typer.Option(help="auto, on or off: serve /v1/ask and /v1/documents (env QWEN3_SERVER_RAG)."),
    ] = None,
    sample_corpus: Annotated[
        Path | None,
        typer.Option(
            help="Folder indexed at start-up when the store is empty (env QWEN3_SERVER_SAMPLE_CORPUS)."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve /v1/rerank (Cohere/Jina-compatible), /v1/ask, /v1/documents, health checks and the web page.

    Every setting is also read from the environment; docs/server.md lists the variables.
    """
    try:
        import uvicorn
        from pydantic import ValidationError

        from .app import create_app
        from .settings import ServerSettings
    except ImportError as error:
        raise typer.BadParameter(
            f"the server needs {error.name}: pip install 'qwen3-rerank[server]'", param_hint="serve"
        ) from error
    try:
        settings = ServerSettings.from_env(
            host=host, port=port, model=model, device=device, rag=rag, sample_corpus=sample_corpus
        )
    except ValidationError as error:
        raise typer.BadParameter(str(error)) from error
    uvicorn.run(create_app(settings), log_level=log_level, **uvicorn_options(settings))


def uvicorn_options(settings: ServerSettings) -> dict[str, Any]:
    """The connection limits of ``settings`` as ``uvicorn.run`` keyword arguments.

    uvicorn has no deadline for a request's head, so ``http`` is its h11 protocol with one.
    """
    from .connections import protocol_with
    from .logs import uvicorn_log_config
    from .state import server_secrets

    return {
        "log_config": uvicorn_log_config(server_secrets(settings)),
        "host": settings.host,
        "port": settings.port,
        "http": protocol_with(settings.header_timeout_s),
        "limit_concurrency": settings.limit_concurrency,
        "timeout_keep_alive": settings.timeout_keep_alive_s,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
    }
