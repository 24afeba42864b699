"""Reading files and chunking: every type read, nothing dropped silently, ids stable."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwen3_rag.ingest import Chunker, read_paths
from qwen3_rag.records import SourceText


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
