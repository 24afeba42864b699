"""The answer prompt: passages numbered in rank order, rendered alike by both frameworks."""

from __future__ import annotations

from haystack.components.builders import ChatPromptBuilder
from haystack.dataclasses import ChatMessage
from llama_index.core.prompts import RichPromptTemplate

from qwen3_rag.generation import (
    NO_LLM_HEADER,
    NO_PASSAGES_ANSWER,
    QA_TEMPLATE,
    ranked_passages_answer,
    template_documents,
)
from qwen3_rag.records import Passage

PASSAGES = [
    Passage("a", "Water boils at 100 degrees Celsius.", "water.md", 0.9, 1),
    Passage("b", "Ice floats on water.", "ice.md", 0.4, 2),
]


def haystack_prompt(question: str) -> str:
    builder = ChatPromptBuilder(template=[ChatMessage.from_user(QA_TEMPLATE)])
    return builder.run(question=question, documents=template_documents(PASSAGES))["prompt"][0].text


def test_the_prompt_numbers_passages_and_asks_for_citations() -> None:
    prompt = haystack_prompt("When does water boil?")
    assert "[1] (source: water.md)\nWater boils at 100 degrees Celsius." in prompt
    assert "[2] (source: ice.md)\nIce floats on water." in prompt
    assert prompt.index("[1]") < prompt.index("[2]")
    assert "cite" in prompt and prompt.rstrip().endswith("Question: When does water boil?\nAnswer:")


def test_haystack_and_llamaindex_render_the_same_prompt() -> None:
    llamaindex = RichPromptTemplate(QA_TEMPLATE).format(
        question="When does water boil?", documents=template_documents(PASSAGES)
    )
    assert llamaindex == haystack_prompt("When does water boil?")


def test_without_an_llm_the_answer_is_the_labelled_ranked_passages() -> None:
    answer = ranked_passages_answer(PASSAGES)
    assert answer.startswith(NO_LLM_HEADER)
    assert answer.index("[1] (score 0.900, water.md)") < answer.index("[2] (score 0.400, ice.md)")


def test_without_passages_the_answer_says_nothing_matched() -> None:
    assert ranked_passages_answer([]) == NO_PASSAGES_ANSWER
