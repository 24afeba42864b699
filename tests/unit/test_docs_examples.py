"""The docs-examples runner (``.ci/docs_examples.py``) covers every page, and the pages keep what a
reader who pastes them needs.

The blocks themselves run in ``.ci/check-extras``, in the fresh environment of the extra each page
installs, one interpreter per page (issue 27): that is where a missing extra shows, which the suite's
environment, holding every extra, would hide. These checks read the pages only, so they take
milliseconds and fail here first when a page is added without an environment, or loses a step.
"""

from __future__ import annotations

import argparse
import re
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNNER = runpy.run_path(str(ROOT / ".ci" / "docs_examples.py"))
PAGES: dict[str, str | None] = RUNNER["PAGES"]


def all_pages() -> list[str]:
    return ["README.md", *sorted(f"docs/{path.name}" for path in (ROOT / "docs").glob("*.md"))]


def installs(page: str) -> list[str]:
    """The extras of ``qwen3-rerank`` that the page's shell blocks install, in reading order."""
    found = []
    for block in RUNNER["blocks"](page):
        for command in RUNNER["shell_commands"](block.code) if block.lang == "shell" else []:
            for extras in re.findall(
                r"qwen3-rerank\[([^\]]+)\]", command if "pip install" in command else ""
            ):
                found += extras.split(",")
    return found


def check_extras_environments() -> set[str]:
    text = (ROOT / ".ci" / "check-extras").read_text(encoding="utf-8")
    return set(re.search(r"extras=\((core [^)]*)\)", text)[1].split())


def test_every_page_has_an_environment() -> None:
    assert sorted(PAGES) == all_pages(), "add the page to PAGES in .ci/docs_examples.py"
    environments = check_extras_environments()
    for page, extra in PAGES.items():
        if extra is None:
            assert not RUNNER["blocks"](page), f"{page} has blocks but no environment runs them"
        else:
            assert extra in environments, f"{page}: .ci/check-extras builds no {extra!r} environment"


def test_a_page_runs_in_the_environment_of_an_extra_it_installs() -> None:
    """Or in ``core`` (no extra), for a page that installs several frameworks' integrations."""
    for page in [page for page, extra in PAGES.items() if extra]:
        named = installs(page)
        if named:
            assert PAGES[page] in [*named, "core"], (page, named)


def test_python_blocks_are_skipped_only_for_a_gpu() -> None:
    for page in all_pages():
        for block in RUNNER["blocks"](page):
            if block.lang == "python":
                assert RUNNER["why_not"](block.code) in (None, "needs a GPU"), block.name


def test_the_offline_tip_installs_the_offline_extra_first() -> None:
    """``python -m qwen3_rerank.testing`` needs the offline Qwen3 tokenizer (issue 27)."""
    for page in all_pages():
        text = (ROOT / page).read_text(encoding="utf-8")
        for block in RUNNER["blocks"](page):
            if "qwen3_rerank.testing" in block.code and block.lang == "shell":
                before = text[: text.index(block.code)] + block.code
                assert re.search(r"pip install [\"']qwen3-rerank\[[^\]]*offline", before), block.name


@pytest.mark.parametrize(
    ("page", "extras"), [("docs/llamaindex.md", "haystack"), ("docs/haystack.md", "llamaindex")]
)
def test_sharing_one_model_installs_both_frameworks(page: str, extras: str) -> None:
    text = (ROOT / page).read_text(encoding="utf-8")
    section = text[text.index("## Sharing one model") :]
    assert re.search(rf"pip install \"qwen3-rerank\[[^\]]*{extras}", section)


@pytest.mark.parametrize("page", ["README.md", "docs/pipelines.md"])
def test_recipes_call_the_commands_on_path(page: str) -> None:
    """A user who ran ``pip install`` has ``qwen3-rerank`` on PATH, not ``.venv/bin`` (which only
    ``.ci/setup`` makes; README's main job, which starts with it, keeps it)."""
    for block in RUNNER["blocks"](page):
        for command in RUNNER["shell_commands"](block.code):
            assert ".venv/bin/" not in command or ".ci/setup" in command, f"{block.name}: {command}"


def test_pip_install_uses_the_wheel_under_test(tmp_path: Path) -> None:
    args = argparse.Namespace(wheel="/w/qwen3_rerank-0.1.0-py3-none-any.whl", tiny="/t", embedder="/e")
    page = RUNNER["Page"]("README.md", args)
    ran: list[str] = []
    page.flush = lambda lines, block: ran.extend(lines)
    block = RUNNER["Block"](
        "x.md", 1, "shell", 'pip install "qwen3-rerank[langchain,offline]" langchain-classic\n'
    )
    page.shell(block, [])
    assert ran and '"/w/qwen3_rerank-0.1.0-py3-none-any.whl[langchain,offline]" langchain-classic' in ran[0]
    assert "-m pip install" in ran[0]


def test_servers_and_hub_ids_are_replaced(tmp_path: Path) -> None:
    args = argparse.Namespace(wheel="/w.whl", tiny="/tiny", embedder="/minilm")
    page = RUNNER["Page"]("README.md", args)
    code = page.code(
        'Qwen3Reranker("Qwen/Qwen3-Reranker-0.6B"); curl localhost:8000/v1/rerank; open("/tmp/x")'
    )
    assert '"/tiny"' in code and f"127.0.0.1:{page.port}/v1/rerank" in code and "/tmp/x" not in code
    assert RUNNER["SERVER_COMMAND"].search("QWEN3_SERVER_RAG=off qwen3-rerank serve")
    assert not RUNNER["SERVER_COMMAND"].search("qwen3-rerank serve-docs")  # only the command itself
