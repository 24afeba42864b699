"""The ``qwen3-rerank`` command line.

The core contributes ``rerank``; other parts of the distribution (pipelines, server) add their
subcommands through the ``qwen3_rerank.cli`` entry-point group, so the core never imports them.
They share what is defined here: the reranker's options, ``--set NAME=VALUE`` for any setting,
and one error style (one line saying what to fix; the traceback only with ``--debug``).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from . import __version__
from .extras import with_install_hint
from .settings import DType, RerankerSettings, SettingsBase

# What a command-line user changes when a model cannot be loaded, by the error's `what` (the
# library's own error names its argument, ``model=``). Parts that load other models add theirs.
MODEL_OPTIONS: dict[str, str] = {"reranker": "--reranker-model or QWEN3_RERANK_MODEL"}

# Failures the command line already reports well: exits, Ctrl-C, and usage errors (`ClickException`,
# reached through `BadParameter`'s bases whether typer vendors click or not).
_REPORTED = (typer.Exit, typer.Abort, typer.BadParameter.__mro__[2])


class _OneLineErrors(TyperGroup):
    """Any other failure of a command becomes ``Error: <what to fix>`` and exit status 1."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _REPORTED:
            raise
        except Exception as error:
            if ctx.meta.get("qwen3.debug"):
                raise
            typer.echo(f"Error: {_one_line(in_cli_words(error))}", err=True)
            raise typer.Exit(1) from error


def in_cli_words(error: Exception) -> Exception:
    """``error``, with a model's load failure telling the flag and variable to set instead of
    the library argument."""
    loading = sys.modules.get(f"{__package__}.loading")  # imported by whatever raised one, if any
    if loading and isinstance(error, loading.ModelLoadError) and error.what in MODEL_OPTIONS:
        return error.advise(f"Set {MODEL_OPTIONS[error.what]}")
    return error


app = typer.Typer(
    name="qwen3-rerank",
    help="Rerank documents with Qwen3-Reranker, and run retrieval pipelines built on it.",
    cls=_OneLineErrors,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
# Options shared by every command that loads a reranker (`rerank`, `ask`, `eval`, `serve`); unset
# values fall through to the environment and .env (docs/configuration.md).
RerankerModel = Annotated[
    str | None,
    typer.Option(
        "--reranker-model", "--model", help="Qwen3-Reranker Hub id or directory [QWEN3_RERANK_MODEL]."
    ),
]
Device = Annotated[
    str | None, typer.Option(help="cpu, cuda, cuda:N or mps; default: best [QWEN3_RAG_DEVICE].")
]
DTypeOption = Annotated[DType | None, typer.Option("--dtype", help="Weights' dtype [QWEN3_RERANK_DTYPE].")]
Instruction = Annotated[
    str | None,
    typer.Option(help="Reranker task instruction; default: web search [QWEN3_RERANK_INSTRUCTION]."),
]
Sets = Annotated[
    list[str] | None,
    typer.Option(
        "--set", metavar="NAME=VALUE", help="Any setting by name (docs/configuration.md); repeatable."
    ),
]


def settings_overrides(model: type[SettingsBase], arguments: dict[str, Any]) -> dict[str, Any]:
    """A command's arguments (its ``locals()``) as overrides for ``model.from_env``: those named
    like a setting, over the ``--set NAME=VALUE`` pairs in ``arguments["sets"]``."""
    overrides: dict[str, Any] = {}
    for pair in arguments.get("sets") or []:
        name, separator, value = pair.partition("=")
        if not separator or not name.strip():
            raise ValueError(f"--set: expected NAME=VALUE, got {pair!r}")
        overrides[name.strip().replace("-", "_")] = value
    flags = {name: value for name, value in arguments.items() if name in model.model_fields}
    return overrides | {name: value for name, value in flags.items() if value is not None}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"qwen3-rerank {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an error.")] = False,
) -> None:
    """Rerank documents with Qwen3-Reranker, and run retrieval pipelines built on it."""
    ctx.meta["qwen3.debug"] = debug
    if not sys.stderr.isatty():  # progress bars are for people at a terminal, not for logs
        _hide_progress_bars()


def _hide_progress_bars() -> None:
    """Hide Hugging Face's download and loading bars without importing transformers to say so:
    the variable is read when huggingface_hub is first imported (transformers follows it); a
    process that has already imported them is told directly."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "huggingface_hub" in sys.modules:
        import huggingface_hub.utils

        huggingface_hub.utils.disable_progress_bars()
    if "transformers" in sys.modules:
        import transformers.utils.logging

        transformers.utils.logging.disable_progress_bar()


def read_documents(source: str) -> list[str | dict[str, Any]]:
    """Documents from a file or ``-`` (stdin): a JSON list of strings, JSON Lines with a ``text``
    field, or plain text with one document per non-blank line.

    A JSON Lines record comes back whole, so that its other fields (an ``id``) reach the output;
    `text_of` gives any document's text."""
    if source == "-" and sys.stdin.isatty():
        raise ValueError(
            "no documents: give a file after the query, or pipe them in (... | qwen3-rerank rerank QUERY)"
        )
    try:
        raw = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read the documents {source!r}: {_reason(error)}") from error
    stripped = raw.strip()
    if not stripped:
        where = "stdin" if source == "-" else repr(source)
        raise ValueError(
            f"no documents in {where}: give one per line, a JSON list, or JSON Lines with 'text'"
        )
    if stripped.startswith("["):
        documents = _json(stripped, source)
        if not isinstance(documents, list) or not all(isinstance(document, str) for document in documents):
            raise ValueError(f"{source}: a JSON list must hold only strings")
        return documents
    lines = [line for line in raw.splitlines() if line.strip()]
    if all(line.lstrip().startswith("{") for line in lines):
        return [
            _record(_json(line, f"{source}, line {number}"), number) for number, line in enumerate(lines, 1)
        ]
    return lines


def text_of(document: str | dict[str, Any]) -> str:
    """The text of a document as `read_documents` returns it."""
    return document if isinstance(document, str) else document["text"]


@app.command()
def rerank(
    query: Annotated[str, typer.Argument(help="The search query.")],
    documents: Annotated[
        str,
        typer.Argument(
            help="File of documents (one per line, a JSON list, or JSON Lines with 'text'); - is stdin."
        ),
    ] = "-",
    top_n: Annotated[int | None, typer.Option("--top-n", "-n", min=1, help="Show only the best N.")] = None,
    reranker_model: RerankerModel = None,
    device: Device = None,
    dtype: DTypeOption = None,
    instruction: Instruction = None,
    window: Annotated[
        bool, typer.Option("--window", help="Score long documents in overlapping windows, keep the best.")
    ] = False,
    sets: Sets = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")
    ] = False,
) -> None:
    """Rank documents by relevance to QUERY and print them with their scores.

    Example: qwen3-rerank rerank "capital of France" docs.txt --top-n 3
    """
    records = read_documents(documents)
    long_documents = "window" if window else None
    settings = RerankerSettings.from_env(**settings_overrides(RerankerSettings, locals()))
    show_progress = not as_json and sys.stderr.isatty()
    from . import Qwen3Reranker  # torch and transformers load here, after the arguments are checked

    with Qwen3Reranker(config=settings.reranker_config(), show_progress=show_progress) as reranker:
        results = reranker.rerank(query, [text_of(record) for record in records], top_n=top_n)
    if as_json:
        # Each result's document is the input as given: a string, or the whole JSON Lines record.
        ranked = [vars(result) | {"document": records[result.index]} for result in results]
        typer.echo(json.dumps(ranked, ensure_ascii=False, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Reranked for: {query}")
    for column, justify in (("rank", "right"), ("score", "right"), ("index", "right"), ("document", "left")):
        table.add_column(column, justify=justify)
    for rank, result in enumerate(results, start=1):
        table.add_row(str(rank), f"{result.score:.4f}", str(result.index), preview(result.document, 120))
    Console().print(table)


def preview(text: str, width: int) -> str:
    """One line of at most ``width`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{where} is not valid JSON: {error}") from error


def _record(record: Any, number: int) -> dict[str, Any]:
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise ValueError(f"JSON Lines record {number} has no string field 'text'")
    return record


def _reason(error: BaseException) -> str:
    return error.strerror if isinstance(error, OSError) and error.strerror else str(error)


def _one_line(error: BaseException) -> str:
    """The error's message on one line (its first line holds the fix; the rest is detail)."""
    text = with_install_hint(error) if isinstance(error, ImportError) else str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    message = lines[0] if lines else type(error).__name__
    return f"{message} (--debug shows the details)" if len(lines) > 1 else message


def _register_plugins() -> None:
    """Let installed parts of the distribution add their subcommands."""
    for entry_point in entry_points(group="qwen3_rerank.cli"):
        try:
            register = entry_point.load()
        except ImportError as error:
            message = with_install_hint(error)
            typer.echo(f"qwen3-rerank: {entry_point.name!r} commands are unavailable: {message}", err=True)
            continue
        register(app)


@functools.cache
def full_app() -> typer.Typer:
    """The app with every installed part's subcommands (registered once)."""
    _register_plugins()
    return app


def main() -> None:
    full_app()()
