"""Reading files into `SourceText` and splitting them into `Chunk`s.

Splitting uses ``semantic-text-splitter`` (Rust, no framework): it counts tokens with the same
cl100k tokenizer LlamaIndex's ``SentenceSplitter`` counts with (bundled, so it works offline),
prefers the largest semantic unit that fits (paragraph, sentence, word), and overlaps neighbours.
It has no regular-expression time limit, so a 10 MB file splits in seconds instead of failing the
run. Walking a folder never leaves it (links that point outside are listed, not followed), and
every file that is not indexed is listed with the reason.
"""

from __future__ import annotations

import codecs
import io
import logging
import os
import re
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

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

# A text file with a NUL byte this close to its start is binary, as git and ripgrep judge it
# (git's buffer_is_binary looks at the first 8,000 bytes).
BINARY_SNIFF_BYTES = 8000
# Opened non-blocking, a FIFO swapped in after the type check cannot hang the read (POSIX only).
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_BINARY = getattr(os, "O_BINARY", 0)
# Byte-order marks and the codec that reads (and drops) each; UTF-32's first, since UTF-32-LE's
# starts with UTF-16-LE's. A text without one is UTF-8.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
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

    A file that is hidden, of an unsupported type, not a regular file (a FIFO, socket or device:
    never opened, since reading one can block forever), larger than ``max_file_bytes``, a link
    leaving its folder, unreadable, binary, not UTF-8 (or UTF-16/32 with a byte-order mark) or
    without text is skipped and listed once in the returned list, never silently dropped. The
    caller reports the list (``qwen3-rerank index`` prints it), so skips are logged at debug level
    only. Names that are not UTF-8 are kept with their bytes escaped (`escaped_name`).

    Each source, and each skip, is named as the user named it (`source_name`): a file in a folder
    given as ``docs/`` is ``docs/guide/a.md``, a file given itself is its file name; no absolute
    path is recorded, so none is shown or served.

    Raises:
        FileNotFoundError: A path given does not exist.
    """
    sources: list[SourceText] = []
    skipped: list[Skipped] = []
    for path, name in _expand(paths, skipped):
        try:
            text = read_text(path, max_file_bytes=max_file_bytes)
        except (OSError, UnicodeDecodeError, ValueError) as error:
            skipped.append(_skip(name, _reason(error)))
            continue
        if not text.strip():
            skipped.append(_skip(name, "no text"))
            continue
        sources.append(SourceText(text=text, source=name, meta={"file_name": escaped_name(path.name)}))
    return sources, skipped


def escaped_name(path: Path | str) -> str:
    """``path`` as text for a source name: with the bytes of a name that is not UTF-8 (``caf\xe9.md``
    written in Latin-1) escaped as ``\xe9``, so the file is indexed and cited instead of failing the
    run when its name is written to the store or printed."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def read_text(path: Path, *, max_file_bytes: int = MAX_FILE_BYTES) -> str:
    """The text of one file, by type: plain text and Markdown as is, HTML without markup, PDF
    page by page.

    Raises:
        ValueError: The file type is not supported, it is not a regular file, it is larger than
            ``max_file_bytes``, or a text or HTML file holds binary content.
        UnicodeDecodeError: A text or HTML file is not UTF-8 (nor UTF-16 or UTF-32 with a
            byte-order mark).
    """
    reason = _not_regular(path.stat().st_mode)  # first: "a block device" says more than its suffix
    if reason:
        raise ValueError(reason)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ValueError(
            f"unsupported file type {suffix or '(none)'!r}; expected one of {sorted(SUPPORTED_SUFFIXES)}"
        )
    return _decode(suffix, read_file_bytes(path, max_file_bytes=max_file_bytes))


def read_file_bytes(path: Path, *, max_file_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most ``max_file_bytes``.

    Its type is checked before it is opened (opening a FIFO waits for a writer; opening a device
    can act on it), and again on the open descriptor, which is opened non-blocking, so a file
    swapped for a FIFO in between cannot hang the read either. At most ``max_file_bytes + 1``
    bytes are read, so a file that grows meanwhile is still refused rather than read whole.

    Raises:
        ValueError: Not a regular file, or larger than ``max_file_bytes``.
        OSError: The file cannot be opened or read.
    """
    reason = _not_regular(path.stat().st_mode)
    if reason:
        raise ValueError(reason)
    descriptor = os.open(path, os.O_RDONLY | _NONBLOCK | _BINARY)
    with os.fdopen(descriptor, "rb") as file:
        status = os.fstat(file.fileno())
        reason = _not_regular(status.st_mode)
        if reason:
            raise ValueError(reason)
        if status.st_size > max_file_bytes:
            raise ValueError(f"too big: {status.st_size} bytes, the limit is {max_file_bytes}")
        data = file.read(max_file_bytes + 1)
    if len(data) > max_file_bytes:
        raise ValueError(f"too big: over {max_file_bytes} bytes, the limit is {max_file_bytes}")
    return data


def _decode(suffix: str, data: bytes) -> str:
    """The text of ``data``, read from a file of type ``suffix`` (one of `SUPPORTED_SUFFIXES`)."""
    if suffix in PDF_SUFFIXES:
        return _read_pdf(data)
    # Newlines as text mode reads them (``\r\n`` and ``\r`` become ``\n``), so ids stay stable.
    text = _text_of(data).replace("\r\n", "\n").replace("\r", "\n")
    if suffix in TEXT_SUFFIXES:
        return text
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    for element in soup(["script", "style", "nav", "footer"]):
        element.decompose()
    return soup.get_text("\n", strip=True)


def _text_of(data: bytes) -> str:
    """UTF-8 text (a byte-order mark dropped), or UTF-16 or UTF-32 when a byte-order mark says so
    (Windows editors write them); a NUL near the start means binary, as git judges it."""
    encoding = next((name for bom, name in _BOMS if data.startswith(bom)), None)
    if encoding is None or encoding == "utf-8-sig":
        nul = data.find(b"\0", 0, BINARY_SNIFF_BYTES)
        if nul >= 0:
            raise ValueError(
                f"binary content (a NUL byte at offset {nul}, within the first {BINARY_SNIFF_BYTES} bytes)"
            )
        return data.decode(encoding or "utf-8")
    text = data.decode(encoding)  # the codec reads the mark, and drops it
    nul = text.find("\0", 0, BINARY_SNIFF_BYTES)
    if nul >= 0:
        raise ValueError(f"binary content ({encoding.upper()} with a NUL character at {nul})")
    return text


def _read_pdf(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        return "\n\n".join(page.extract_text() or "" for page in reader.pages)
    except PdfReadError as error:
        raise ValueError(f"unreadable PDF: {error}") from error


def _not_regular(mode: int) -> str | None:
    """Why a file of this ``st_mode`` is not read, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    kinds = {
        stat.S_ISFIFO: "a FIFO (named pipe)",
        stat.S_ISSOCK: "a socket",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISDIR: "a directory",
    }
    kind = next((name for test, name in kinds.items() if test(mode)), "an unknown kind of file")
    return f"{kind}, not a regular file; not opened"


def source_name(root: Path, path: Path) -> str:
    """The name a file found under the folder ``root`` is recorded by: its path relative to
    ``root``, under ``root``'s own name, with ``/`` between parts on every system."""
    return escaped_name(PurePosixPath(root.name, *path.relative_to(root).parts).as_posix())


def _expand(paths: Sequence[Path], skipped: list[Skipped]) -> Iterator[tuple[Path, str]]:
    """The files to read, each with its `source_name`; what a folder holds but will not be read
    is appended to ``skipped``."""
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist; pass files or directories to index")
        if path.is_dir():
            yield from _walk(path.resolve(), skipped)
        else:  # a regular file, or a FIFO, socket or device that reading skips unopened
            yield path.resolve(), escaped_name(path.name)


def _walk(root: Path, skipped: list[Skipped]) -> Iterator[tuple[Path, str]]:
    """Files under ``root`` in name order, without following links out of it or into loops."""
    for folder, directories, files in os.walk(root):
        here = Path(folder)
        walked = []
        for name in sorted(directories):
            reason = _not_walked(here / name)
            if reason:
                skipped.append(_skip(source_name(root, here / name), reason))
            else:
                walked.append(name)
        directories[:] = walked
        for name in sorted(files):
            child = here / name
            reason = _not_indexed(root, child)
            if reason:
                skipped.append(_skip(source_name(root, child), reason))
            else:
                # A link within the folder is its target, named as the target: read once.
                yield child.resolve(), source_name(root, child.resolve())


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


def _skip(name: str, reason: str) -> Skipped:
    """A skip, listed once: the caller reports the list, so the log has it at debug level only."""
    logger.debug("skipped %s: %s", name, reason)
    return Skipped(name, reason)


def _reason(error: Exception) -> str:
    if isinstance(error, UnicodeDecodeError):
        encoding = "UTF-8" if error.encoding.startswith("utf-8") else error.encoding.upper()
        return f"not {encoding} text ({error.reason} at byte {error.start})"
    if isinstance(error, OSError):
        return f"unreadable: {error.strerror or error}"
    return str(error)
