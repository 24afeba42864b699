"""``qwen3-rerank index``, ``ask`` and ``eval``: the pipelines on the command line.

Every command builds a `RagService` from flags and environment (`Settings.from_env`), so the
command line, the evaluation and the HTTP server run the same pipeline. Registered into the
``qwen3-rerank`` typer app through the ``qwen3_rerank.cli`` entry point.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.panel import Panel
from rich.table import Table

from .records import Answer, IndexReport, Passage
from .service import RagService
from .settings import Settings
from .stores import StoreError

console = Console()
errors = Console(stderr=True)

Backend = Annotated[
    str | None, typer.Option(help="memory (embedded, no server) or elasticsearch. Env: QWEN3_RAG_BACKEND.")
]
Framework = Annotated[str | None, typer.Option(help="haystack or llamaindex. Env: QWEN3_RAG_FRAMEWORK.")]
DataDir = Annotated[
    Path | None,
    typer.Option(help="Embedded store directory. Env: QWEN3_RAG_DATA_DIR; default ~/.cache/qwen3-rag."),
]
EsUrl = Annotated[
    str | None,
    typer.Option(help="Elasticsearch URL. Env: ES_URL; auth from ES_API_KEY or ES_USERNAME/ES_PASSWORD."),
]
IndexName = Annotated[
    str | None, typer.Option("--index", help="Index name. Env: QWEN3_RAG_INDEX; default qwen3-rag.")
]
EmbeddingModel = Annotated[
    str | None,
    typer.Option(help="sentence-transformers model id or directory. Env: QWEN3_RAG_EMBEDDING_MODEL."),
]
RerankerModel = Annotated[
    str | None, typer.Option(help="Qwen3-Reranker id or directory. Env: QWEN3_RERANK_MODEL.")
]
Device = Annotated[str | None, typer.Option(help="cpu, cuda, cuda:N or mps; default: best available.")]


def register(app: typer.Typer) -> None:
    """Add ``index``, ``ask`` and ``eval`` to the ``qwen3-rerank`` app."""
    app.command("index")(index)
    app.command("ask")(ask)
    app.command("eval")(evaluate)


def index(
    paths: Annotated[
        list[Path], typer.Argument(help="Files (.txt, .md, .html, .pdf) or directories to index.")
    ],
    backend: Backend = None,
    framework: Framework = None,
    data_dir: DataDir = None,
    es_url: EsUrl = None,
    index_name: IndexName = None,
    embedding_model: EmbeddingModel = None,
    device: Device = None,
    chunk_size: Annotated[
        int | None, typer.Option(min=16, help="Chunk length in tokens; default 160 on CPU, 400 on GPU.")
    ] = None,
    chunk_overlap: Annotated[
        int | None, typer.Option(min=0, help="Tokens shared by neighbouring chunks.")
    ] = None,
) -> None:
    """Chunk, embed and store documents; indexing a file again replaces its passages."""
    with _failures():
        settings = Settings.from_env(
            backend=backend,
            framework=framework,
            data_dir=data_dir,
            es_url=es_url,
            index_name=index_name,
            embedding_model=embedding_model,
            device=device,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
        )
        with RagService(settings) as service:
            service.ping()
            report = service.index_paths(paths, show_progress=True)
            total = service.document_count()
    _print_index_report(report, total, settings.backend)
    if report.chunks == 0:
        errors.print("[red]Error:[/red] nothing was indexed: no readable text in the given paths.")
        raise typer.Exit(1)


def ask(
    question: Annotated[str, typer.Argument(help="The question to answer.")],
    top_k: Annotated[
        int | None, typer.Option("--top-k", min=1, help="Candidates to rerank; default 12 on CPU, 50 on GPU.")
    ] = None,
    top_n: Annotated[
        int | None, typer.Option("--top-n", min=1, help="Passages kept after reranking; default 5.")
    ] = None,
    llm: Annotated[
        str | None,
        typer.Option(help="none, openai (any OpenAI-compatible endpoint) or hf. Env: QWEN3_RAG_LLM."),
    ] = None,
    llm_model: Annotated[
        str | None, typer.Option(help="LLM model name or directory. Env: QWEN3_RAG_LLM_MODEL.")
    ] = None,
    llm_base_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible base URL. Env: OPENAI_BASE_URL.")
    ] = None,
    show_stages: Annotated[
        bool,
        typer.Option(
            "--show-stages", help="Show what BM25, dense, fusion and rerank returned, and their timings."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    backend: Backend = None,
    framework: Framework = None,
    data_dir: DataDir = None,
    es_url: EsUrl = None,
    index_name: IndexName = None,
    embedding_model: EmbeddingModel = None,
    reranker_model: RerankerModel = None,
    device: Device = None,
    fusion: Annotated[
        str | None, typer.Option(help="auto, client or elasticsearch (server-side RRF).")
    ] = None,
) -> None:
    """Answer a question from the indexed documents, citing the passages it used."""
    with _failures():
        settings = Settings.from_env(
            top_k=top_k,
            top_n=top_n,
            llm=llm,
            llm_model=llm_model,
            llm_base_url=llm_base_url,
            backend=backend,
            framework=framework,
            data_dir=data_dir,
            es_url=es_url,
            index_name=index_name,
            embedding_model=embedding_model,
            reranker_model=reranker_model,
            device=device,
            fusion=fusion,
        )
        with RagService(settings) as service:
            if service.document_count() == 0:
                raise _Failure(
                    f"nothing is indexed in {service.location}: run `qwen3-rerank index PATH` first"
                )
            with errors.status("Retrieving, reranking and answering (models load on first use)..."):
                answer = service.ask(question)
    if as_json:
        typer.echo(json.dumps(asdict(answer), ensure_ascii=False, indent=2))
        return
    _print_answer(answer, show_stages)


def evaluate(
    dataset_dir: Annotated[
        Path, typer.Argument(help="BEIR dataset folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.")
    ],
    split: Annotated[str, typer.Option(help="Which qrels/<split>.tsv to evaluate on.")] = "test",
    stages: Annotated[
        str, typer.Option(help="Comma-separated stages among bm25, dense, hybrid, rerank.")
    ] = "bm25,dense,hybrid,rerank",
    limit_queries: Annotated[
        int | None, typer.Option(min=1, help="Evaluate only the first N judged queries.")
    ] = None,
    output_dir: Annotated[Path, typer.Option(help="Where report.md, report.json and the charts go.")] = Path(
        "eval-report"
    ),
    top_k: Annotated[
        int | None,
        typer.Option(
            "--top-k", min=1, help="Documents retrieved per stage; default 100 (Recall@100 needs 100)."
        ),
    ] = None,
    candidates: Annotated[
        int | None,
        typer.Option(min=1, help="Hybrid candidates reranked; default as for ask (12 on CPU, 50 on GPU)."),
    ] = None,
    backend: Backend = None,
    framework: Framework = None,
    data_dir: DataDir = None,
    es_url: EsUrl = None,
    index_name: IndexName = None,
    embedding_model: EmbeddingModel = None,
    reranker_model: RerankerModel = None,
    device: Device = None,
    fusion: Annotated[
        str | None, typer.Option(help="auto, client or elasticsearch (server-side RRF).")
    ] = None,
) -> None:
    """Measure nDCG@10, MRR@10, Recall@10/100 and time per query of each retrieval stage."""
    from .evaluation import parse_stages, run_evaluation
    from .report import print_table, write_reports

    with _failures():
        chosen = parse_stages(stages)
        settings = Settings.from_env(
            top_k=candidates,
            framework=framework,
            backend=backend,
            data_dir=data_dir,
            es_url=es_url,
            index_name=index_name,
            embedding_model=embedding_model,
            reranker_model=reranker_model,
            device=device,
            fusion=fusion,
        )
        result = run_evaluation(
            dataset_dir,
            settings,
            split=split,
            stages=chosen,
            limit_queries=limit_queries,
            top_k=top_k,
            show_progress=True,
        )
    print_table(result, console)
    for path in write_reports(result, output_dir):
        console.print(f"wrote {path}")


class _Failure(Exception):
    """An error the user can fix; printed without a traceback."""


@contextlib.contextmanager
def _failures() -> Iterator[None]:
    """Print expected errors (bad settings, unreachable store, models that cannot be loaded,
    missing files) and exit with 1."""
    _configure_logging()
    try:
        yield
    except (_Failure, StoreError, ValueError, OSError, ImportError) as error:
        errors.print(f"[red]Error:[/red] {error}", markup=True, highlight=False)
        raise typer.Exit(1) from error


def _configure_logging() -> None:
    logger = logging.getLogger("qwen3_rag")
    if not logger.handlers:
        logger.addHandler(RichHandler(console=errors, show_time=False, show_path=False))
        logger.setLevel(logging.INFO)


def _print_index_report(report: IndexReport, total: int, backend: str) -> None:
    table = Table(title="Indexed", show_header=False)
    table.add_row("files", str(report.files))
    table.add_row("chunks written", str(report.chunks))
    table.add_row("files skipped", str(len(report.skipped)))
    table.add_row("passages removed (files gone)", str(report.removed))
    table.add_row(f"chunks in the {backend} store", str(total))
    table.add_row("seconds", f"{report.seconds:.1f}")
    console.print(table)
    for skipped in report.skipped:
        errors.print(f"[yellow]skipped[/yellow] {skipped.path}: {skipped.reason}", highlight=False)


def _print_answer(answer: Answer, show_stages: bool) -> None:
    console.print(Panel(answer.answer, title="Answer", expand=False))
    console.print(_passage_table("Cited passages (reranked)", answer.passages))
    if not show_stages:
        return
    for stage in ("bm25", "dense", "fusion"):
        passages = answer.stages.get(stage, [])
        if passages:
            console.print(_passage_table(f"Stage: {stage}", passages, ranks_after=answer.passages))
        elif stage != "fusion":
            console.print(f"[dim]Stage {stage}: fused server-side by Elasticsearch, or no match.[/dim]")
    timings = Table(title="Seconds per stage")
    for stage in answer.timings:
        timings.add_column(stage, justify="right")
    timings.add_row(*(f"{seconds:.3f}" for seconds in answer.timings.values()))
    console.print(timings)


def _passage_table(title: str, passages: list[Passage], ranks_after: list[Passage] | None = None) -> Table:
    table = Table(title=title)
    for column, justify in (("#", "right"), ("score", "right"), ("source", "left"), ("passage", "left")):
        table.add_column(column, justify=justify)
    if ranks_after is not None:
        table.add_column("after rerank", justify="right")
    reranked = {p.id: p.rank for p in ranks_after or []}
    for passage in passages:
        preview = " ".join(passage.text.split())
        preview = preview if len(preview) <= 100 else preview[:97] + "..."
        row = [
            str(passage.rank),
            f"{passage.score:.4f}",
            Path(passage.source).name or passage.source,
            preview,
        ]
        if ranks_after is not None:
            row.append(str(reranked.get(passage.id, "-")))
        table.add_row(*row)
    return table
