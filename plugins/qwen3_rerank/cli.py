"""The ``qwen3-rerank`` command line.

The core contributes ``rerank``; other parts of the distribution (pipelines, server) add their
subcommands through the ``qwen3_rerank.cli`` entry-point group, so the core never imports them.
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from .reranker import DEFAULT_MODEL

app = typer.Typer(
    name="qwen3-rerank",
    help="Rerank documents with Qwen3-Reranker, and run retrieval pipelines built on it.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root() -> None:
    """Rerank documents with Qwen3-Reranker, and run retrieval pipelines built on it."""


def read_documents(source: str) -> list[str]:
    """Documents from a file or ``-`` (stdin): a JSON list of strings, JSON Lines with a ``text``
    field, or plain text with one document per non-blank line."""
    try:
        raw = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise typer.BadParameter(f"cannot read {source!r}: {error}", param_hint="--docs") from error
    stripped = raw.strip()
    if stripped.startswith("["):
        documents = json.loads(stripped)
        if not all(isinstance(document, str) for document in documents):
            raise typer.BadParameter("a JSON list must hold only strings", param_hint="--docs")
        return documents
    lines = [line for line in raw.splitlines() if line.strip()]
    if lines and all(line.lstrip().startswith("{") for line in lines):
        return [json.loads(line)["text"] for line in lines]
    return lines


@app.command()
def rerank(
    query: Annotated[str, typer.Option("--query", "-q", help="The search query.")],
    docs: Annotated[
        str,
        typer.Option(
            "--docs",
            "-d",
            help="File of documents (one per line, a JSON list, or JSON Lines with 'text'); '-' reads stdin.",
        ),
    ],
    instruction: Annotated[str | None, typer.Option(help="Task instruction; default: web search.")] = None,
    top_k: Annotated[int | None, typer.Option("--top-k", "-k", min=1, help="Show only the best K.")] = None,
    model: Annotated[
        str, typer.Option(envvar="QWEN3_RERANK_MODEL", help="Hub id or local directory of the reranker.")
    ] = DEFAULT_MODEL,
    device: Annotated[
        str | None, typer.Option(help="cpu, cuda, cuda:N or mps; default: best available.")
    ] = None,
    max_length: Annotated[int, typer.Option(min=16, help="Token limit per prompt.")] = 8192,
    window: Annotated[
        bool, typer.Option("--window", help="Score long documents in overlapping windows, keep the best.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")
    ] = False,
) -> None:
    """Rank documents by relevance to a query and print them with their scores."""
    from . import Qwen3Reranker

    documents = read_documents(docs)
    with Qwen3Reranker(
        model,
        device=device,
        max_length=max_length,
        long_documents="window" if window else "truncate",
        show_progress=not as_json and sys.stderr.isatty(),
    ) as reranker:
        results = reranker.rerank(query, documents, top_k=top_k, instruction=instruction)
    if as_json:
        typer.echo(json.dumps([vars(result) for result in results], ensure_ascii=False, indent=2))
        return
    table = Table(title=f"Reranked for: {query}")
    for column, justify in (("rank", "right"), ("score", "right"), ("index", "right"), ("document", "left")):
        table.add_column(column, justify=justify)
    for rank, result in enumerate(results, start=1):
        preview = result.document if len(result.document) <= 120 else result.document[:117] + "..."
        table.add_row(str(rank), f"{result.score:.4f}", str(result.index), preview)
    Console().print(table)


def _register_plugins() -> None:
    """Let installed parts of the distribution add their subcommands."""
    for entry_point in entry_points(group="qwen3_rerank.cli"):
        try:
            register = entry_point.load()
        except ImportError as error:
            typer.echo(f"qwen3-rerank: the {entry_point.name!r} commands are unavailable: {error}", err=True)
            continue
        register(app)


def main() -> None:
    _register_plugins()
    app()
