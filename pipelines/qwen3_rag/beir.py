"""Reading a dataset in the BEIR layout: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``.

The layout of the BEIR benchmark (Thakur et al., 2021), which most public retrieval datasets are
published in: one JSON object per line with ``_id``, ``text`` and (corpus only) ``title``, and a
tab-separated qrels file with a header line ``query-id corpus-id score``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class BeirDataset:
    """A corpus, its queries, and graded judgements ``qrels[query_id][doc_id] = relevance``."""

    name: str
    corpus: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    def judged_queries(self, limit: int | None = None) -> list[str]:
        """Ids of the queries with at least one relevant document, in file order."""
        judged = [qid for qid in self.queries if any(rel > 0 for rel in self.qrels.get(qid, {}).values())]
        return judged[:limit] if limit is not None else judged


def load_beir(directory: Path, split: str = "test") -> BeirDataset:
    """Read a BEIR dataset directory; a title, when present, is put before the document text.

    Raises:
        FileNotFoundError: A file of the layout is missing (the message names it).
        ValueError: A line is not valid JSON, lacks ``_id``/``text``, or a qrels row is malformed.
    """
    directory = Path(directory)
    paths = {
        "corpus": directory / "corpus.jsonl",
        "queries": directory / "queries.jsonl",
        "qrels": directory / "qrels" / f"{split}.tsv",
    }
    for role, path in paths.items():
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found: a BEIR dataset needs corpus.jsonl, queries.jsonl and qrels/{split}.tsv "
                f"(missing the {role})"
            )
    corpus = {row["_id"]: _document_text(row) for row in _json_lines(paths["corpus"])}
    queries = {row["_id"]: row["text"] for row in _json_lines(paths["queries"])}
    return BeirDataset(directory.name, corpus, queries, _read_qrels(paths["qrels"]))


def _document_text(row: dict[str, Any]) -> str:
    title = (row.get("title") or "").strip()
    return f"{title}\n\n{row['text']}" if title else row["text"]


def _json_lines(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number} is not valid JSON: {error.msg}") from error
            if not isinstance(row, dict) or "_id" not in row or "text" not in row:
                raise ValueError(f"{path}:{number} needs the fields '_id' and 'text'")
            row["_id"] = str(row["_id"])
            yield row


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as rows:
        reader = csv.reader(rows, delimiter="\t")
        for number, row in enumerate(reader, start=1):
            if not row or (number == 1 and row[0] == "query-id"):
                continue
            try:
                query_id, doc_id, score = row[0], row[1], int(row[2])
            except (IndexError, ValueError) as error:
                raise ValueError(f"{path}:{number} must be 'query-id<TAB>corpus-id<TAB>score'") from error
            qrels.setdefault(query_id, {})[doc_id] = score
    return qrels
