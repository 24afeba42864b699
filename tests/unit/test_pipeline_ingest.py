"""Reading files and chunking: every type read, nothing dropped silently, ids stable."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qwen3_rag.ingest import Chunker, read_paths
from qwen3_rag.records import SourceText
from qwen3_rag.testing import minilm_model_dir
from qwen3_rerank.cli import full_app


def test_text_markdown_and_html_are_read_and_markup_is_dropped(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Plain text about tea.", encoding="utf-8")
    (tmp_path / "b.md").write_text("# Coffee\n\nCoffee is roasted.", encoding="utf-8")
    (tmp_path / "c.html").write_text(
        "<html><head><script>var x = 1;</script></head><body><p>Cocoa grows in pods.</p></body></html>",
        encoding="utf-8",
    )
    sources, skipped = read_paths([tmp_path])
    texts = {Path(s.source).name: s.text for s in sources}
    assert skipped == []
    assert texts["a.txt"] == "Plain text about tea."
    assert "Coffee is roasted." in texts["b.md"]
    assert texts["c.html"] == "Cocoa grows in pods."


def test_non_utf8_empty_and_broken_files_are_skipped_with_reasons(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("Fine.", encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "empty.md").write_text("   \n", encoding="utf-8")
    (tmp_path / "broken.pdf").write_bytes(b"not a pdf at all")
    sources, skipped = read_paths([tmp_path])
    assert [Path(s.source).name for s in sources] == ["good.txt"]
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert reasons["latin1.txt"].startswith("not UTF-8")
    assert reasons["empty.md"] == "no text"
    assert "PDF" in reasons["broken.pdf"]


def test_an_explicit_file_of_unsupported_type_is_skipped_not_ignored(tmp_path: Path) -> None:
    image = tmp_path / "photo.png"
    image.write_bytes(b"\x89PNG")
    sources, skipped = read_paths([image])
    assert sources == []
    assert "unsupported file type '.png'" in skipped[0].reason


def test_directories_skip_hidden_and_unsupported_files_and_list_them(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "notes.txt").write_text("hidden", encoding="utf-8")
    (tmp_path / "data.bin").write_bytes(b"\x00\x01")
    (tmp_path / "table.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    (tmp_path / "LICENSE").write_text("MIT", encoding="utf-8")
    (tmp_path / "doc.txt").write_text("visible", encoding="utf-8")
    sources, skipped = read_paths([tmp_path])
    assert [Path(s.source).name for s in sources] == ["doc.txt"]
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert reasons[".git"] == "hidden"
    assert "notes.txt" not in reasons, "a hidden folder is listed once, not walked"
    assert reasons["data.bin"].startswith("unsupported file type '.bin'")
    assert reasons["table.csv"].startswith("unsupported file type '.csv'")
    assert reasons["LICENSE"].startswith("unsupported file type '(none)'")


def test_links_that_leave_the_folder_are_listed_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not for the index", encoding="utf-8")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "own.md").write_text("Inside.", encoding="utf-8")
    (folder / "leak.txt").symlink_to(outside / "secret.txt")
    (folder / "alias.md").symlink_to(folder / "own.md")
    (folder / "elsewhere").symlink_to(outside, target_is_directory=True)
    sources, skipped = read_paths([folder])
    assert {Path(s.source).name for s in sources} == {"own.md"}
    assert all("not for the index" not in s.text for s in sources)
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert "outside the folder" in reasons["leak.txt"]
    assert "not followed" in reasons["elsewhere"]


def test_a_file_over_the_size_limit_is_skipped_with_its_size(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("word " * 1000, encoding="utf-8")
    (tmp_path / "small.txt").write_text("word", encoding="utf-8")
    sources, skipped = read_paths([tmp_path], max_file_bytes=1000)
    assert [Path(s.source).name for s in sources] == ["small.txt"]
    assert skipped[0].reason == "too big: 5000 bytes, the limit is 1000"


def test_a_ten_megabyte_text_is_split_without_failing() -> None:
    paragraph = "The river carries silt to the delta, where it settles and builds new land. " * 8
    text = "\n\n".join(f"Part {i}. {paragraph}" for i in range(17_000))
    assert len(text) > 10_000_000
    chunks = Chunker(size=160, overlap=32).split(SourceText(text, "huge.txt"))
    assert len(chunks) > 10_000
    assert chunks[0].text.startswith("Part 0.") and "Part 16999." in chunks[-1].text


def test_a_long_line_without_sentence_breaks_is_split_too() -> None:
    text = "x" * 2_000_000  # no spaces, no punctuation: nothing for a sentence regex to hold on to
    chunks = Chunker(size=256, overlap=0).split(SourceText(text, "blob.txt"))
    assert "".join(c.text for c in chunks) == text


def test_a_long_chinese_paragraph_is_cut_at_sentence_ends_not_mid_word() -> None:
    # Chinese puts no spaces between words: a paragraph is one run of 1,000+ characters, which
    # was hard-cut every 1,000 characters (`…第2` | `0条：…`).
    sentences = [f"根据第{i}条规定，量子纠缠的实验结果必须公开。" for i in range(120)]
    chunks = Chunker(size=160, overlap=0).split(SourceText("".join(sentences), "law.md"))
    assert len(chunks) > 5
    assert all(chunk.text.endswith("。") for chunk in chunks), [c.text[-5:] for c in chunks]
    assert "".join(chunk.text for chunk in chunks) == "".join(sentences)


def test_japanese_sentences_end_at_full_width_marks() -> None:
    text = "".join(f"これは{i}番目の文です！本当ですか？" for i in range(80))
    chunks = Chunker(size=64, overlap=0).split(SourceText(text, "ja.md"))
    assert len(chunks) > 3 and all(chunk.text[-1] in "！？" for chunk in chunks)


def test_a_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_paths([tmp_path / "nope"])


def test_long_texts_are_split_into_overlapping_chunks() -> None:
    sentences = [f"Sentence number {i} talks about topic {i % 7}." for i in range(200)]
    chunks = Chunker(size=64, overlap=16).split(SourceText(" ".join(sentences), "long.txt"))
    assert len(chunks) > 5
    assert [c.position for c in chunks] == list(range(len(chunks)))
    first_words, second_words = set(chunks[0].text.split()), set(chunks[1].text.split())
    assert first_words & second_words, "neighbouring chunks share their overlap"
    joined = " ".join(c.text for c in chunks)
    assert all(s in joined for s in sentences), "no sentence is lost"


def test_chunk_ids_are_stable_and_depend_on_source_and_text() -> None:
    chunker = Chunker(size=64, overlap=8)
    once = chunker.split(SourceText("Same words.", "a.txt"))
    again = chunker.split(SourceText("Same words.", "a.txt"))
    elsewhere = chunker.split(SourceText("Same words.", "b.txt"))
    assert once[0].id == again[0].id
    assert once[0].id != elsewhere[0].id


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF showing ``text`` in Helvetica, written byte by byte (with a correct xref)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    pdf = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(pdf)


def test_pdf_text_is_extracted(tmp_path: Path) -> None:
    (tmp_path / "saturn.pdf").write_bytes(minimal_pdf("Saturn has rings of ice."))
    sources, skipped = read_paths([tmp_path])
    assert skipped == []
    assert sources[0].text.strip() == "Saturn has rings of ice."


@pytest.mark.timeout(60)
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_is_skipped_unopened_in_a_folder_and_when_named(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.txt")  # opening it for reading would wait for a writer forever
    (tmp_path / "doc.txt").write_text("Tea is a drink.", encoding="utf-8")
    sources, skipped = read_paths([tmp_path])
    named_sources, named_skipped = read_paths([tmp_path / "pipe.txt"])
    assert [Path(s.source).name for s in sources] == ["doc.txt"]
    assert [(Path(s.path).name, s.reason) for s in skipped] == [
        ("pipe.txt", "a FIFO (named pipe), not a regular file; not opened")
    ]
    # Named by itself, it is listed by its own name; in the folder, under the folder's name.
    assert named_sources == [] and [(s.path, s.reason) for s in named_skipped] == [
        ("pipe.txt", skipped[0].reason)
    ]


@pytest.mark.timeout(60)
@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="Unix sockets are POSIX")
def test_sockets_and_devices_are_skipped_with_their_kind(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "listening.md"))
        server.listen()
        sources, skipped = read_paths([tmp_path, Path(os.devnull)])
    assert sources == []
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert reasons["listening.md"] == "a socket, not a regular file; not opened"
    assert reasons[Path(os.devnull).name] == "a character device, not a regular file; not opened"


def test_binary_content_is_skipped_as_git_judges_it(tmp_path: Path) -> None:
    with (tmp_path / "sparse.txt").open("wb") as sparse:
        sparse.truncate(200_000)  # 200 KB of NUL bytes: once 1,638 chunks of nothing
    (tmp_path / "utf16.md").write_text("Tea is a drink.", encoding="utf-16-le")
    (tmp_path / "page.html").write_bytes(b"<p>Tea</p>\x00\x01\x02")
    (tmp_path / "late.txt").write_bytes(b"Tea is a drink. " * 600 + b"\x00")  # NUL past 8,000 bytes
    sources, skipped = read_paths([tmp_path])
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert set(reasons) == {"sparse.txt", "utf16.md", "page.html"}
    assert reasons["sparse.txt"] == "binary content (a NUL byte at offset 0, within the first 8000 bytes)"
    assert reasons["utf16.md"].startswith("binary content (a NUL byte at offset 1,")
    assert [Path(s.source).name for s in sources] == ["late.txt"], "git reads only the first 8,000 bytes"


def test_windows_line_endings_read_as_text_mode_reads_them(tmp_path: Path) -> None:
    (tmp_path / "crlf.txt").write_bytes(b"Tea.\r\nCoffee.\rCocoa.\n")
    sources, _ = read_paths([tmp_path])
    assert sources[0].text == "Tea.\nCoffee.\nCocoa.\n"


def test_skips_are_listed_once_and_not_also_logged_as_warnings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "table.csv").write_text("a,b\n", encoding="utf-8")
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="qwen3_rag"):
        _, skipped = read_paths([tmp_path])
    assert sorted(Path(s.path).name for s in skipped) == ["empty.txt", "table.csv"]
    assert caplog.records == [], "the report lists skips; a warning too printed each one twice"


def index_env(tmp_path: Path) -> dict[str, str]:
    """`qwen3-rerank index` into an embedded store under ``tmp_path``, with the offline embedder."""
    return {
        "QWEN3_RAG_DATA_DIR": str(tmp_path / "store"),
        "QWEN3_RAG_EMBEDDING_MODEL": str(minilm_model_dir()),
        "QWEN3_RAG_DEVICE": "cpu",
        "QWEN3_RAG_BACKEND": "memory",
        "COLUMNS": "300",
    }


def test_index_prints_each_skip_once(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "tea.txt").write_text("Tea is a drink.", encoding="utf-8")
    (tmp_path / "docs" / "table.csv").write_text("a,b\n", encoding="utf-8")
    env = index_env(tmp_path)
    result = CliRunner().invoke(full_app(), ["index", str(tmp_path / "docs")], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.count("table.csv") == 1, result.output


def test_sources_are_named_relative_to_the_folder_given_under_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "handbook"
    (folder / "guide").mkdir(parents=True)
    (folder / "guide" / "tea.md").write_text("Tea is brewed.", encoding="utf-8")
    (folder / "intro.txt").write_text("Welcome.", encoding="utf-8")
    (folder / "data.bin").write_bytes(b"\0\1")
    loose = tmp_path / "loose.txt"
    loose.write_text("A file given by itself.", encoding="utf-8")
    monkeypatch.chdir(folder)  # "." is named by the folder's own name too
    for given in (folder, Path(".")):
        sources, skipped = read_paths([given, loose])
        assert [s.source for s in sources] == ["handbook/intro.txt", "handbook/guide/tea.md", "loose.txt"]
        assert [s.path for s in skipped] == ["handbook/data.bin"]
    assert all(str(tmp_path) not in s.source for s in sources), "no absolute path is recorded"


def test_a_byte_order_mark_is_dropped_and_utf16_or_utf32_with_one_decoded(tmp_path: Path) -> None:
    text = "Tea is a drink; thé, 茶.\n"
    (tmp_path / "bom8.md").write_bytes(b"\xef\xbb\xbf" + text.encode())
    for encoding in ("utf-16", "utf-16-be", "utf-32", "utf-32-be"):  # the last three get a mark here
        mark = b"" if encoding in ("utf-16", "utf-32") else "\ufeff".encode(encoding)
        (tmp_path / f"{encoding}.txt").write_bytes(mark + text.encode(encoding))
    sources, skipped = read_paths([tmp_path])
    assert skipped == []
    assert {Path(s.source).name: s.text for s in sources} == {
        name: text for name in ("bom8.md", "utf-16.txt", "utf-16-be.txt", "utf-32.txt", "utf-32-be.txt")
    }


@pytest.mark.skipif(os.name != "posix", reason="POSIX names are bytes; Windows names are UTF-16")
def test_a_file_name_that_is_not_utf8_is_indexed_with_its_bytes_escaped(tmp_path: Path) -> None:
    folder = tmp_path / os.fsdecode(b"d\xe9j\xe0")  # a Latin-1 folder name, as old archives have
    folder.mkdir()
    (folder / os.fsdecode(b"caf\xe9.md")).write_text("Coffee is brewed from roasted beans.", encoding="utf-8")
    (folder / os.fsdecode(b"caf\xe9.csv")).write_text("a,b\n", encoding="utf-8")
    sources, skipped = read_paths([folder])
    assert [s.source for s in sources] == ["d\\xe9j\\xe0/caf\\xe9.md"]
    assert sources[0].meta["file_name"] == "caf\\xe9.md"
    assert [s.path for s in skipped] == ["d\\xe9j\\xe0/caf\\xe9.csv"]
    env = index_env(tmp_path)
    for _ in range(2):  # the second run finds the same names: nothing removed, nothing added
        result = CliRunner().invoke(full_app(), ["index", str(folder)], env=env)
        assert result.exit_code == 0, result.output
        assert "into 1 chunks" in result.output and "holds 1 chunks" in result.output, result.output
        assert "caf\\xe9.csv" in result.output and "removed" not in result.output
