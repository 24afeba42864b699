"""The answer prompt both frameworks render, and the answer given when no LLM is configured.

The prompt is a Jinja template so that each framework renders it with its own prompt builder
(Haystack's ``ChatPromptBuilder``, LlamaIndex's ``RichPromptTemplate``): passages are numbered
in rank order and the model is asked to cite them as [1], [2], ..., so ``[n]`` in an answer
is ``Answer.passages[n - 1]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .records import Passage, display_source

QA_TEMPLATE = """\
Answer the question using only the numbered passages below. After each statement, cite the \
passages that support it by their numbers in square brackets, for example [1] or [2][3]. If the \
passages do not contain the answer, say that you do not know.

{% for document in documents %}[{{ loop.index }}] (source: {{ document.meta.source }})
{{ document.content }}

{% endfor %}Question: {{ question }}
Answer:"""

NO_LLM_HEADER = "No LLM configured (--llm none): the best passages, ranked by the Qwen3 reranker."
NO_PASSAGES_ANSWER = "No passage in the index matches this question."


def template_documents(passages: Sequence[Passage]) -> list[dict[str, Any]]:
    """Passages shaped like Haystack ``Document``s (``content``, ``meta.source``), which is what
    the template reads, so a Haystack ranker's output feeds it directly too."""
    return [
        {"content": passage.text, "meta": {"source": display_source(passage.source)}} for passage in passages
    ]


def ranked_passages_answer(passages: Sequence[Passage]) -> str:
    """The answer of ``llm="none"``: the ranked passages, labelled as such, numbered like citations."""
    if not passages:
        return NO_PASSAGES_ANSWER
    lines = [NO_LLM_HEADER, ""]
    for number, passage in enumerate(passages, start=1):
        lines.append(f"[{number}] (score {passage.score:.3f}, {display_source(passage.source)})")
        lines.append(passage.text)
        lines.append("")
    return "\n".join(lines).rstrip()
