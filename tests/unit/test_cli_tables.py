"""The CLI's passage tables keep rank, score and source visible beside passages in any script."""

from __future__ import annotations

import io

import pytest
from rich.cells import cell_len
from rich.console import Console

from qwen3_rag.cli import _passage_table, cell_preview
from qwen3_rag.records import Passage

PASSAGES = {
    "chinese": "量子纠缠是一种量子力学现象，两个粒子的状态相互关联，即使它们相距遥远。" * 4,
    "thai": "ภาษาไทยเป็นภาษาที่ไม่มีการเว้นวรรคระหว่างคำ และใช้อักษรไทยในการเขียน " * 4,
    "arabic": "اللغة العربية هي إحدى أكثر اللغات انتشارا في العالم، ويتحدثها أكثر من 400 مليون نسمة. " * 4,
}


def render(table: object, columns: int) -> str:
    console = Console(width=columns, file=io.StringIO(), color_system=None, legacy_windows=False)
    console.print(table)
    return console.file.getvalue()


@pytest.mark.parametrize("columns", [80, 160])
@pytest.mark.parametrize("script", sorted(PASSAGES))
def test_rank_score_and_source_stay_visible(script: str, columns: int) -> None:
    passages = [
        Passage(f"id{rank}", PASSAGES[script], f"/docs/{script}-notes-{rank}.md", 1.0 / rank, rank, {})
        for rank in (1, 2, 3)
    ]
    for ranks_after, width in ((None, columns - 40), (list(reversed(passages)), columns - 55)):
        output = render(_passage_table("Sources", passages, ranks_after, width=width), columns)
        header = next(line for line in output.splitlines() if "score" in line)
        assert "#" in header and "source" in header and "passage" in header
        if ranks_after is not None:
            assert "after rerank" in header
        for passage in passages:
            row = next(line for line in output.splitlines() if f"{passage.score:.3f}" in line)
            assert f" {passage.rank} " in row
            assert f"{script}-notes-{passage.rank}.md" in row
        assert all(cell_len(line) <= columns for line in output.splitlines())


def test_a_preview_is_cut_by_terminal_cells_not_characters() -> None:
    line = cell_preview(PASSAGES["chinese"], 20)
    assert cell_len(line.plain) <= 20 and line.plain.endswith("…")
    assert len(line.plain) <= 11  # each Han character takes two cells
