"""What a generation of the embedded store holds, file by file: sizes and SHA-256 checksums.

A generation's ``manifest.json`` lists every other file in it with its size and checksum
(``files``), computed when the generation is written. Opening a generation compares sizes only
(a ``stat`` per file: a truncated or missing file is found before a search reads it); the
checksums are compared when a generation is about to become the base of a new one (each write)
and by ``qwen3-rerank check``, since they read every byte. Generations written before the
manifest recorded ``files`` have none of this; they are checked for consistency instead (row
counts and offsets against the files' sizes), which finds truncation but not zeroed bytes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"


def file_records(path: Path) -> dict[str, dict[str, Any]]:
    """Size and SHA-256 of every file under ``path`` but the manifest, by relative POSIX name."""
    records = {}
    for file in sorted(path.rglob("*")):
        name = file.relative_to(path).as_posix()
        if file.is_file() and name != MANIFEST:
            records[name] = {"size": file.stat().st_size, "sha256": sha256(file)}
    return records


def sha256(file: Path) -> str:
    with file.open("rb") as opened:
        return hashlib.file_digest(opened, "sha256").hexdigest()


def size_problems(path: Path, records: dict[str, dict[str, Any]]) -> list[str]:
    """What is wrong with the files' presence and sizes (cheap: one ``stat`` each)."""
    problems = []
    for name, record in records.items():
        try:
            size = (path / name).stat().st_size
        except FileNotFoundError:
            problems.append(f"{name} is missing")
            continue
        if size != record["size"]:
            problems.append(f"{name} is {size} bytes, its manifest records {record['size']}")
    return problems


def checksum_problems(path: Path, records: dict[str, dict[str, Any]]) -> list[str]:
    """The files whose bytes no longer match their recorded SHA-256 (reads every file)."""
    problems = []
    for name, record in records.items():
        file = path / name
        if file.is_file() and sha256(file) != record["sha256"]:
            problems.append(f"{name} does not match its SHA-256 checksum (its bytes changed)")
    return problems
