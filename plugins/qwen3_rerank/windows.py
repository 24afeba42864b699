"""Cutting long documents into overlapping windows.

The model card truncates the document to fit ``max_length``, so an answer near the end of a long
page is never seen. Splitting the document into overlapping windows, scoring each and keeping
the best, lets the whole page count. Windows are cut at token boundaries of the full prompt and
handed back as text, so each window is then scored exactly as if the user had passed it alone.
"""

from __future__ import annotations

from .prompt import PromptEncoder

# Re-tokenizing a window's text can merge its edges into slightly different tokens; a small
# margin keeps every window inside the budget so nothing is silently truncated.
_RETOKENIZATION_MARGIN = 4


def split_into_windows(
    encoder: PromptEncoder,
    query: str,
    document: str,
    instruction: str | None,
    overlap: int,
) -> list[str]:
    """The document itself when it fits, else overlapping slices of it that each fit."""
    document_start, spans = encoder.body_token_offsets(query, document, instruction)
    if len(spans) <= encoder.body_budget:
        return [document]
    head_tokens = sum(1 for _, end in spans if end <= document_start)
    capacity = encoder.body_budget - head_tokens - _RETOKENIZATION_MARGIN
    if capacity <= overlap:
        raise ValueError(
            f"window_overlap ({overlap} tokens) must be smaller than the room a window has for the "
            f"document ({max(capacity, 0)} tokens with max_length={encoder.max_length} and this query); "
            "lower window_overlap or raise max_length."
        )
    document_spans = [
        (max(start, document_start) - document_start, end - document_start)
        for start, end in spans
        if end > document_start
    ]
    windows = []
    for first in range(0, len(document_spans), capacity - overlap):
        window = document_spans[first : first + capacity]
        windows.append(document[window[0][0] : window[-1][1]])
        if first + capacity >= len(document_spans):
            break
    return windows
