"""Reading files into `SourceText` and splitting them into `Chunk`s.

Splitting uses LlamaIndex's ``SentenceSplitter``: it counts tokens, keeps sentences whole where
it can, and overlaps neighbouring chunks, which is what a reranker with a token budget wants.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

from .records import Chunk, Skipped, SourceText

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".rst"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
PDF_SUFFIXES = frozenset({".pdf"})
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES


class Chunker:
    """Splits a source into overlapping, sentence-aware chunks of at most ``size`` tokens."""

    def __init__(self, size: int, overlap: int) -> None:
        from llama_index.core.node_parser import SentenceSplitter

        self._splitter = SentenceSplitter(chunk_size=size, chunk_overlap=overlap)

    def split(self, document: SourceText) -> list[Chunk]:
        pieces = [piece.strip() for piece in self._splitter.split_text(document.text)]
        pieces = [piece for piece in pieces if piece]
        return [Chunk.create(piece, document.source, i, document.meta) for i, piece in enumerate(pieces)]


def read_paths(paths: Sequence[Path]) -> tuple[list[SourceText], list[Skipped]]:
    """Read files and directories (recursively, supported types only, hidden entries skipped).

    A file that cannot be read, is not UTF-8, has an unsupported type or holds no text is
    skipped with a warning and listed, never silently dropped.

    Raises:
        FileNotFoundError: A path given does not exist.
    """
    sources: list[SourceText] = []
    skipped: list[Skipped] = []
    for path in _expand(paths):
        try:
            text = read_text(path)
        except (OSError, UnicodeDecodeError, ValueError) as error:
            skipped.append(Skipped(str(path), _reason(error)))
            logger.warning("skipped %s: %s", path, skipped[-1].reason)
            continue
        if not text.strip():
            skipped.append(Skipped(str(path), "no text"))
            logger.warning("skipped %s: no text", path)
            continue
        sources.append(SourceText(text=text, source=str(path), meta={"file_name": path.name}))
    return sources, skipped


def read_text(path: Path) -> str:
    """The text of one file, by type: plain text and Markdown as is, HTML without markup, PDF
    page by page.

    Raises:
        ValueError: The file type is not supported.
        UnicodeDecodeError: A text or HTML file is not UTF-8.
    """
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        return path.read_text(encoding="utf-8")
    if suffix in HTML_SUFFIXES:
        from bs4 import BeautifulSoup

        soup = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
        for element in soup(["script", "style", "nav", "footer"]):
            element.decompose()
        return soup.get_text("\n", strip=True)
    if suffix in PDF_SUFFIXES:
        return _read_pdf(path)
    raise ValueError(
        f"unsupported file type {suffix or '(none)'!r}; expected one of {sorted(SUPPORTED_SUFFIXES)}"
    )


def _read_pdf(path: Path) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        return "\n\n".join(page.extract_text() or "" for page in reader.pages)
    except PdfReadError as error:
        raise ValueError(f"unreadable PDF: {error}") from error


def _expand(paths: Sequence[Path]) -> Iterator[Path]:
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist; pass files or directories to index")
        if path.is_file():
            yield path.resolve()
            continue
        for child in sorted(path.rglob("*")):
            relative = child.relative_to(path)
            hidden = any(part.startswith(".") for part in relative.parts)
            if child.is_file() and not hidden and child.suffix.lower() in SUPPORTED_SUFFIXES:
                yield child.resolve()


def _reason(error: Exception) -> str:
    if isinstance(error, UnicodeDecodeError):
        return f"not UTF-8 text ({error.reason} at byte {error.start})"
    if isinstance(error, OSError):
        return f"unreadable: {error.strerror or error}"
    return str(error)
