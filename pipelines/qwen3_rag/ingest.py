"""Reading files into `SourceText` and splitting them into `Chunk`s.

Splitting uses ``semantic-text-splitter`` (Rust, no framework): it counts tokens with the same
cl100k tokenizer LlamaIndex's ``SentenceSplitter`` counts with (bundled, so it works offline),
prefers the largest semantic unit that fits (paragraph, sentence, word), and overlaps neighbours.
It has no regular-expression time limit, so a 10 MB file splits in seconds instead of failing the
run. Walking a folder never leaves it (links that point outside are listed, not followed), and
every file that is not indexed is listed with the reason.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from .records import Chunk, Skipped, SourceText

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".rst"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
PDF_SUFFIXES = frozenset({".pdf"})
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES
# Files larger than this are listed as skipped rather than read whole into memory.
MAX_FILE_BYTES = 64 * 1024 * 1024
# The tokenizer chunk sizes are counted in: cl100k, as LlamaIndex's and Haystack's splitters count.
CHUNK_TOKENIZER_MODEL = "gpt-3.5-turbo"
LONG_RUN = 1000
_LONG_RUN = re.compile(rf"\S{{{LONG_RUN},}}")
# Where a long run without spaces (Chinese and Japanese put none between words) is cut, best
# first: after a sentence end (。！？ and their full-width, half-width and ASCII forms), after a
# clause mark (；，、：, closing brackets and quotes); only a run with neither is cut anywhere.
_RUN_BREAKS = (
    re.compile(r"[。！？｡．!?]+"),
    re.compile(r"[；，、：;,:）」』】〕》〉”’)\]]+"),
)


class Chunker:
    """Splits a source into overlapping, sentence-aware chunks of at most ``size`` tokens.

    Example:
        >>> [c.text for c in Chunker(size=64, overlap=8).split(SourceText("Tea. Coffee.", "a.txt"))]
        ['Tea. Coffee.']
    """

    def __init__(self, size: int, overlap: int) -> None:
        from semantic_text_splitter import TextSplitter

        if not 0 <= overlap < size:
            raise ValueError(f"overlap must be >= 0 and smaller than size ({size}); got {overlap}")
        self._splitter = TextSplitter.from_tiktoken_model(CHUNK_TOKENIZER_MODEL, size, overlap=overlap)

    def split(self, document: SourceText) -> list[Chunk]:
        pieces = [
            piece.strip() for segment in _segments(document.text) for piece in self._splitter.chunks(segment)
        ]
        pieces = [piece for piece in pieces if piece]
        return [Chunk.create(piece, document.source, i, document.meta) for i, piece in enumerate(pieces)]


def _segments(text: str) -> Iterator[str]:
    """``text`` in order, with each run of ``LONG_RUN`` or more non-space characters (a Chinese
    paragraph, base64, minified code) cut into pieces of at most that size: byte-pair encoding
    is quadratic in the length of one word, so a 2 MB run would take hours to count in tokens."""
    start = 0
    for run in _LONG_RUN.finditer(text):
        if run.start() > start:
            yield text[start : run.start()]
        yield from _run_pieces(run[0])
        start = run.end()
    if start < len(text):
        yield text[start:]


def _run_pieces(run: str) -> Iterator[str]:
    """``run`` in pieces of at most ``LONG_RUN`` characters, each ending at a sentence end or a
    clause mark in its second half where there is one (`_RUN_BREAKS`)."""
    while len(run) > LONG_RUN:
        cut = _last_break(run[:LONG_RUN])
        yield run[:cut]
        run = run[cut:]
    if run:
        yield run


def _last_break(window: str) -> int:
    for pattern in _RUN_BREAKS:
        ends = [match.end() for match in pattern.finditer(window, len(window) // 2)]
        if ends:
            return ends[-1]
    return len(window)


def read_paths(
    paths: Sequence[Path], *, max_file_bytes: int = MAX_FILE_BYTES
) -> tuple[list[SourceText], list[Skipped]]:
    """Read files and directories (recursively, supported types only, hidden entries skipped).

    A file that is hidden, of an unsupported type, larger than ``max_file_bytes``, a link
    leaving its folder, unreadable, not UTF-8 or without text is skipped with a warning and
    listed, never silently dropped.

    Raises:
        FileNotFoundError: A path given does not exist.
    """
    sources: list[SourceText] = []
    skipped: list[Skipped] = []
    for path in _expand(paths, skipped):
        try:
            size = path.stat().st_size
            if size > max_file_bytes:
                raise ValueError(f"too big: {size} bytes, the limit is {max_file_bytes}")
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


def _expand(paths: Sequence[Path], skipped: list[Skipped]) -> Iterator[Path]:
    """The files to read; what a folder holds but will not be read is appended to ``skipped``."""
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist; pass files or directories to index")
        if path.is_file():
            yield path.resolve()
        else:
            yield from _walk(path.resolve(), skipped)


def _walk(root: Path, skipped: list[Skipped]) -> Iterator[Path]:
    """Files under ``root`` in name order, without following links out of it or into loops."""
    for folder, directories, files in os.walk(root):
        here = Path(folder)
        walked = []
        for name in sorted(directories):
            reason = _not_walked(here / name)
            if reason:
                skipped.append(_skip(here / name, reason))
            else:
                walked.append(name)
        directories[:] = walked
        for name in sorted(files):
            child = here / name
            reason = _not_indexed(root, child)
            if reason:
                skipped.append(_skip(child, reason))
            else:
                yield child.resolve()


def _not_walked(folder: Path) -> str | None:
    """Why a sub-folder is not entered (hidden, or a link that could leave the tree or loop)."""
    if folder.name.startswith("."):
        return "hidden"
    if folder.is_symlink():
        return "link to a folder, not followed"
    return None


def _not_indexed(root: Path, file: Path) -> str | None:
    """Why a file found in the folder is not read, or None to read it."""
    if file.name.startswith("."):
        return "hidden"
    if file.is_symlink():
        target = file.resolve()
        if not target.is_relative_to(root):
            return f"link to {target}, outside the folder; not followed"
        if not target.is_file():
            return "link to something that is not a file"
    if file.suffix.lower() not in SUPPORTED_SUFFIXES:
        suffix = file.suffix.lower() or "(none)"
        return f"unsupported file type {suffix!r}; expected one of {sorted(SUPPORTED_SUFFIXES)}"
    return None


def _skip(path: Path, reason: str) -> Skipped:
    logger.warning("skipped %s: %s", path, reason)
    return Skipped(str(path), reason)


def _reason(error: Exception) -> str:
    if isinstance(error, UnicodeDecodeError):
        return f"not UTF-8 text ({error.reason} at byte {error.start})"
    if isinstance(error, OSError):
        return f"unreadable: {error.strerror or error}"
    return str(error)
