"""``qwen3-rerank index``, ``ask``, ``eval`` and ``check``: the pipelines on the command line.

Every command builds `Settings` from its flags, ``--set NAME=VALUE`` and the environment (one
mechanism, docs/configuration.md), so the command line, the evaluation and the HTTP server run
the same pipeline. Errors become one line through the core CLI's command group. Registered into
the ``qwen3-rerank`` typer app through the ``qwen3_rerank.cli`` entry point.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table
from rich.text import Text

from qwen3_rerank.cli import (
    MODEL_OPTIONS,
    Device,
    DTypeOption,
    Instruction,
    RerankerModel,
    Sets,
    settings_overrides,
)

from .settings import Backend, Framework, Fusion, IndexLayoutChoice, LlmKind, Settings

if TYPE_CHECKING:  # the service, and through it torch, loads inside the commands that run it
    from .records import Answer, IndexReport, Passage

console = Console()
errors = Console(stderr=True)

# Options shared by the commands (unset values fall through to the environment and .env).
BackendOption = Annotated[
    Backend | None, typer.Option("--backend", help="Document store [QWEN3_RAG_BACKEND].")
]
FrameworkOption = Annotated[
    Framework | None,
    typer.Option("--framework", help="Framework composing the pipeline [QWEN3_RAG_FRAMEWORK]."),
]
DataDir = Annotated[
    Path | None,
    typer.Option(help="Embedded store directory; default ~/.cache/qwen3-rag [QWEN3_RAG_DATA_DIR]."),
]
EsUrl = Annotated[str | None, typer.Option(help="Elasticsearch URL [ES_URL]; auth from ES_API_KEY.")]
IndexName = Annotated[
    str | None, typer.Option("--index", help="Index name; default qwen3-rag [QWEN3_RAG_INDEX].")
]
EmbeddingModel = Annotated[
    str | None, typer.Option(help="sentence-transformers model id or directory [QWEN3_RAG_EMBEDDING_MODEL].")
]
Candidates = Annotated[
    int | None,
    typer.Option(
        min=1, help="Passages retrieved and reranked; default 12 on CPU, 80 on GPU [QWEN3_RAG_CANDIDATES]."
    ),
]
FusionOption = Annotated[Fusion | None, typer.Option("--fusion", help="Where RRF runs [QWEN3_RAG_FUSION].")]
IndexLayout = Annotated[
    IndexLayoutChoice | None,
    typer.Option(
        "--index-layout",
        help="Who wrote the Elasticsearch index; auto reads its mapping [QWEN3_RAG_INDEX_LAYOUT].",
    ),
]


def register(app: typer.Typer) -> None:
    """Add ``index``, ``ask``, ``eval`` and ``check`` to the ``qwen3-rerank`` app."""
    MODEL_OPTIONS["embedding model"] = "--embedding-model or QWEN3_RAG_EMBEDDING_MODEL"
    app.command("index")(index)
    app.command("ask")(ask)
    app.command("eval")(evaluate)
    app.command("check")(check)


def index(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Files (.txt, .md, .html, .pdf) or directories to index.", show_default=False),
    ] = None,
    from_dir: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="Copy the embedded index in this data directory into Elasticsearch (with --backend "
            "elasticsearch): chunks, vectors and analysis, without re-embedding.",
        ),
    ] = None,
    backend: BackendOption = None,
    data_dir: DataDir = None,
    es_url: EsUrl = None,
    index_name: IndexName = None,
    embedding_model: EmbeddingModel = None,
    device: Device = None,
    chunk_size: Annotated[
        int | None, typer.Option(min=16, help="Largest chunk in tokens; default 160.")
    ] = None,
    sets: Sets = None,
) -> None:
    """Chunk, embed and store documents; indexing a file again replaces its passages.

    With --from DATA_DIR --backend elasticsearch, copy an embedded index into Elasticsearch instead
    (no re-embedding; docs/pipelines.md).
    """
    if from_dir is not None:
        if paths:
            raise ValueError("give either PATHS to index or --from DATA_DIR to copy, not both")
        _copy_index(from_dir, _settings(locals()))
        return
    if not paths:
        raise ValueError("give the files or folders to index (PATHS), or --from DATA_DIR to copy an index")
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        raise FileNotFoundError(f"no such file or directory: {', '.join(missing)}")
    settings = _settings(locals())
    from .service import RagService

    with RagService(settings) as service:
        service.ping()
        report = service.index_paths(paths, show_progress=errors.is_terminal)
        total = service.document_count()
    _print_index_report(report, total, settings.backend)
    if report.chunks == 0:
        raise ValueError("nothing was indexed: no readable text in the given paths")


def check(
    backend: BackendOption = None,
    data_dir: DataDir = None,
    es_url: EsUrl = None,
    index_name: IndexName = None,
    sets: Sets = None,
) -> None:
    """Verify the store: every file of the embedded store's current generation against the size
    and SHA-256 its manifest records, and its parts against each other; exit 1 naming each damaged
    file. (Elasticsearch checks its own files: this only reaches it.)"""
    settings = _settings(locals())
    from .stores import open_store

    store = open_store(settings)
    try:
        verify = getattr(store, "verify", None)
        if verify is None:
            store.ping()
            console.print(
                f"{store.location}: reachable, {store.count()} chunks; Elasticsearch verifies its own files."
            )
            return
        verified = verify()
    finally:
        store.close()
    if verified.generation is None:
        console.print(f"{verified.location}: empty, nothing indexed yet.")
        return
    how = (
        "sizes and SHA-256 checksums match the manifest"
        if verified.checksums
        else "no checksums recorded (written by an older version; the next `index` records them), "
        "the parts are consistent"
    )
    console.print(
        f"{verified.location}: {verified.generation} is whole: {verified.rows} chunks, {verified.files} "
        f"files, {verified.bytes:,} bytes; {how}."
    )


def _copy_index(from_dir: Path, settings: Settings) -> None:
    """``index --from``: the embedded index into Elasticsearch, then one line saying what serves."""
    if not from_dir.is_dir():
        raise FileNotFoundError(f"--from: no data directory {str(from_dir)!r}")
    from .migrate import copy_to_elasticsearch

    report = copy_to_elasticsearch(settings, from_dir, show_progress=errors.is_terminal)
    console.print(
        f"Copied {report.chunks} chunks in {report.seconds:.1f} s ({report.chunks_per_second:.0f} "
        f"chunks/s, no re-embedding) into {report.index!r}; the alias {report.alias!r} at "
        f"{settings.es_url} now serves it."
    )


def ask(
    question: Annotated[str, typer.Argument(help="The question to answer.")],
    candidates: Candidates = None,
    top_n: Annotated[
        int | None, typer.Option(min=1, help="Passages kept after reranking; default 5.")
    ] = None,
    llm: Annotated[
        LlmKind | None, typer.Option("--llm", help="Who writes the answer [QWEN3_RAG_LLM].")
    ] = None,
    llm_model: Annotated[
        str | None, typer.Option(help="LLM model name or directory [QWEN3_RAG_LLM_MODEL].")
    ] = None,
    llm_base_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible base URL [OPENAI_BASE_URL].")
    ] = None,
    show_stages: Annotated[
        bool,
        typer.Option("--show-stages", help="Also show what BM25, dense and fusion returned, and timings."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    backend: BackendOption = None,
    framework: FrameworkOption = None,
    data_dir: DataDir = None,
    es_url: EsUrl = None,
    index_name: IndexName = None,
    embedding_model: EmbeddingModel = None,
    reranker_model: RerankerModel = None,
    device: Device = None,
    dtype: DTypeOption = None,
    instruction: Instruction = None,
    fusion: FusionOption = None,
    index_layout: IndexLayout = None,
    sets: Sets = None,
) -> None:
    """Answer a question from the indexed documents, citing the passages it used."""
    settings = _with_installed_framework(_settings(locals()))
    from .service import RagService, framework_class

    framework_class(settings)  # a missing framework fails first, naming the extra to install
    with RagService(settings) as service:
        if service.document_count() == 0:
            raise ValueError(f"nothing is indexed in {service.location}: run `qwen3-rerank index PATH` first")
        with errors.status("Retrieving, reranking and answering (models load on first use)..."):
            answer = service.ask(question)
    if as_json:
        typer.echo(json.dumps(asdict(answer), ensure_ascii=False, indent=2))
        return
    _print_answer(answer, settings, show_stages)


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
    output_dir: Annotated[
        Path | None,
        typer.Option(help="Where report.md, report.json and the charts go; default: a new temporary folder."),
    ] = None,
    depth: Annotated[
        int | None,
        typer.Option(min=1, help="Documents retrieved per stage; default 100 (Recall@100 needs 100)."),
    ] = None,
    candidates: Candidates = None,
    backend: BackendOption = None,
    framework: FrameworkOption = None,
    data_dir: DataDir = None,
    es_url: EsUrl = None,
    index_name: IndexName = None,
    embedding_model: EmbeddingModel = None,
    reranker_model: RerankerModel = None,
    device: Device = None,
    dtype: DTypeOption = None,
    fusion: FusionOption = None,
    index_layout: IndexLayout = None,
    sets: Sets = None,
) -> None:
    """Measure nDCG@10, MRR@10, Recall@10/100 and time per query of each retrieval stage."""
    if not dataset_dir.is_dir():
        raise FileNotFoundError(
            f"no dataset folder {str(dataset_dir)!r}: give a BEIR folder with corpus.jsonl"
        )
    from .evaluation import parse_stages, run_evaluation
    from .report import print_table, write_reports

    chosen = parse_stages(stages)
    settings = _with_installed_framework(_settings(locals()))
    result = run_evaluation(
        dataset_dir,
        settings,
        split=split,
        stages=chosen,
        limit_queries=limit_queries,
        depth=depth,
        show_progress=errors.is_terminal,
    )
    print_table(result, console)
    output_dir = output_dir or Path(tempfile.mkdtemp(prefix="qwen3-rerank-eval-"))
    for path in write_reports(result, output_dir):
        console.print(f"wrote {path}")


def _settings(arguments: dict[str, Any]) -> Settings:
    """Settings from a command's arguments (named like the settings), ``--set`` and the environment."""
    _configure_logging()
    return Settings.from_env(**settings_overrides(Settings, arguments))


# The package that each framework's pipeline needs (llama_index alone is also our namespace).
FRAMEWORK_PACKAGES: dict[str, str] = {"haystack": "haystack", "llamaindex": "llama_index.core"}


def _with_installed_framework(settings: Settings) -> Settings:
    """``settings``, with the framework that is installed when none was chosen (by
    ``--framework`` or ``QWEN3_RAG_FRAMEWORK``) and the default's is not: a LlamaIndex-only
    environment then works as it is. A chosen framework stays, and fails naming its extra."""
    if "framework" in settings.model_fields_set or _installed(FRAMEWORK_PACKAGES[settings.framework]):
        return settings
    installed = [name for name, package in FRAMEWORK_PACKAGES.items() if _installed(package)]
    return settings.replace(framework=installed[0]) if installed else settings


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except ModuleNotFoundError:  # a missing parent package
        return False


def _configure_logging() -> None:
    logger = logging.getLogger("qwen3_rag")
    if not logger.handlers:
        logger.addHandler(RichHandler(console=errors, show_time=False, show_path=False))
        logger.setLevel(logging.INFO)


def _print_index_report(report: IndexReport, total: int, backend: str) -> None:
    removed = f"; removed {report.removed} passages of files that are gone" if report.removed else ""
    console.print(
        f"Indexed {report.files} files into {report.chunks} chunks in {report.seconds:.1f} s; "
        f"the {backend} store holds {total} chunks{removed}."
    )
    for skipped in report.skipped:
        errors.print(f"[yellow]skipped[/yellow] {skipped.path}: {skipped.reason}", highlight=False)


def _print_answer(answer: Answer, settings: Settings, show_stages: bool) -> None:
    """The answer and its sources, a screen's worth; ``--show-stages`` adds each stage's list."""
    console.print(answer.answer if settings.llm != "none" else "[bold]Best passages[/bold] (no LLM runs)")
    console.print(_passage_table("Sources (reranked)", answer.passages, width=console.width - 40))
    if settings.llm == "none":
        errors.print(
            "No LLM writes an answer by default: add --llm openai --llm-model MODEL (any OpenAI-compatible "
            "endpoint, OPENAI_BASE_URL) or --llm hf --llm-model MODEL for a local one.",
            highlight=False,
        )
    if show_stages:
        for stage in ("bm25", "dense", "fusion"):
            passages = answer.stages.get(stage, [])
            if passages:
                console.print(
                    _passage_table(f"Stage: {stage}", passages, answer.passages, console.width - 55)
                )
            elif stage != "fusion":
                console.print(f"[dim]Stage {stage}: fused server-side by Elasticsearch, or no match.[/dim]")
    timings = "  ".join(f"{stage} {seconds:.2f}s" for stage, seconds in answer.timings.items())
    errors.print(
        f"[dim]{timings}[/dim]" if show_stages else f"[dim]{sum(answer.timings.values()):.1f} s[/dim]"
    )


def _passage_table(
    title: str, passages: list[Passage], ranks_after: list[Passage] | None = None, width: int = 80
) -> Table:
    """Passages as a table that fits the terminal whatever the script: the preview is cut to
    ``width`` terminal cells (a Chinese character takes two, a combining mark none), and the small
    columns keep their width, so rank, score and source stay readable beside any passage."""
    from .records import display_source  # sources as the user named them, old indices' too

    table = Table(title=title)
    table.add_column("#", justify="right", no_wrap=True, min_width=2)
    table.add_column("score", justify="right", no_wrap=True, min_width=6)
    table.add_column("source", no_wrap=True, min_width=12, max_width=32, overflow="ellipsis")
    table.add_column("passage", overflow="ellipsis", ratio=1)
    if ranks_after is not None:
        table.add_column("after rerank", justify="right", no_wrap=True, min_width=len("after rerank"))
    reranked = {p.id: p.rank for p in ranks_after or []}
    for passage in passages:
        row: list[str | Text] = [
            str(passage.rank),
            f"{passage.score:.3f}",
            display_source(passage.source),
            cell_preview(passage.text, max(width, 30)),
        ]
        if ranks_after is not None:
            row.append(str(reranked.get(passage.id, "-")))
        table.add_row(*row)
    return table


def cell_preview(text: str, cells: int) -> Text:
    """One line of ``text`` at most ``cells`` terminal cells wide (rich's own measure), ending
    in an ellipsis where it was cut."""
    line = Text(" ".join(text.split()), no_wrap=True, overflow="ellipsis")
    line.truncate(cells, overflow="ellipsis")
    return line
