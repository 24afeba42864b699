"""``qwen3-rerank serve``: run the HTTP API and the web page with uvicorn.

Registered through the ``qwen3_rerank.cli`` entry-point group; fastapi and uvicorn are imported
inside the command, so the rest of the CLI works without the ``server`` extra.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from qwen3_rerank.cli import Device, DTypeOption, RerankerModel, Sets, settings_overrides
from qwen3_rerank.extras import missing

from ..cli import IndexLayout

if TYPE_CHECKING:
    from .settings import ServerSettings


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to the ``qwen3-rerank`` CLI."""
    app.command()(serve)


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to bind; default 127.0.0.1 [QWEN3_SERVER_HOST].")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port; default 8000 [QWEN3_SERVER_PORT].")
    ] = None,
    reranker_model: RerankerModel = None,
    device: Device = None,
    dtype: DTypeOption = None,
    rag: Annotated[
        Literal["auto", "on", "off"] | None,
        typer.Option("--rag", help="Serve /v1/ask and /v1/documents [QWEN3_SERVER_RAG]."),
    ] = None,
    sample_corpus: Annotated[
        Path | None,
        typer.Option(help="Folder indexed at start-up when the store is empty [QWEN3_SERVER_SAMPLE_CORPUS]."),
    ] = None,
    served_model_name: Annotated[
        list[str] | None,
        typer.Option(
            "--served-model-name",
            help="A name `model` may use besides the served id (repeatable; the first is the name "
            "responses carry) [QWEN3_SERVER_SERVED_MODEL_NAMES].",
        ),
    ] = None,
    index_layout: IndexLayout = None,
    sets: Sets = None,
    log_level: Annotated[
        Literal["critical", "error", "warning", "info", "debug"], typer.Option(help="uvicorn log level.")
    ] = "info",
) -> None:
    """Serve /v1/rerank (Cohere/Jina-compatible), /v1/ask, /v1/documents, health checks and the web page.

    Every setting is also read from the environment and .env; docs/configuration.md lists them.
    """
    arguments = locals()
    try:
        import uvicorn

        from .app import build_rag_service, create_app
        from .settings import ServerSettings
    except ImportError as error:
        raise missing(error, "the server") from error
    arguments["served_model_names"] = tuple(served_model_name) if served_model_name else None
    from qwen3_rerank import Qwen3Reranker  # torch and transformers: only once serving

    settings = ServerSettings.from_env(**settings_overrides(ServerSettings, arguments))
    rag_service = partial(build_rag_service, index_layout=index_layout)  # /v1/ask's own settings
    # Loaded before uvicorn starts, so a model that cannot load is one line, not a failed lifespan.
    with Qwen3Reranker(config=settings.reranker_config()) as reranker:
        app = create_app(settings, reranker=reranker, rag_factory=rag_service)
        uvicorn.run(app, log_level=log_level, **uvicorn_options(settings))


def uvicorn_options(settings: ServerSettings) -> dict[str, Any]:
    """The connection limits of ``settings`` as ``uvicorn.run`` keyword arguments.

    uvicorn has no deadline for a request's head and no per-client cap on connections waiting
    for one, so ``http`` is its h11 protocol with both.
    """
    from .edge import protocol_with
    from .observability import uvicorn_log_config
    from .state import server_secrets

    return {
        "log_config": uvicorn_log_config(server_secrets(settings)),
        "host": settings.host,
        "port": settings.port,
        "http": protocol_with(settings.header_timeout_s, settings.max_waiting_per_client),
        "limit_concurrency": settings.limit_concurrency,
        "timeout_keep_alive": settings.timeout_keep_alive_s,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
    }
