"""The framework-neutral layer of qwen3_rag works with neither Haystack nor LlamaIndex importable,
so that each framework's extra installs without the other (issue 12); and every layer of
docs/architecture.md imports with the layers above it blocked, so its arrows point down only."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import pytest

# Importing any of these (or a submodule) fails in the child process, as if not installed.
BLOCKED = ("haystack", "haystack_integrations", "llama_index", "langchain_core", "langchain_qwen3_rerank")

ROOT = Path(__file__).resolve().parents[2]
TOP = ("qwen3_rag.server", "qwen3_rag.cli")
# Bottom up: each layer's folders, and the modules of the layers above it (blocked when it imports).
LAYERS = {
    "core": (["plugins/qwen3_rerank"], ["qwen3_rag", *BLOCKED]),
    "adapters": (
        ["plugins/llama_index", "plugins/haystack_integrations", "plugins/langchain_qwen3_rerank"],
        ["qwen3_rag", "haystack_integrations.components.retrievers"],
    ),
    "pipelines": (["pipelines/qwen3_rag", "pipelines/haystack_integrations"], list(TOP)),
    "server and CLI": (["pipelines/qwen3_rag/server", "pipelines/qwen3_rag/cli.py"], []),
}

NEUTRAL_MODULES = [
    "qwen3_rag",
    "qwen3_rag.settings",
    "qwen3_rag.records",
    "qwen3_rag.fusion",
    "qwen3_rag.embedding",
    "qwen3_rag.retrieval",
    "qwen3_rag.service",
    "qwen3_rag.stores",
    "qwen3_rag.stores.base",
    "qwen3_rag.stores.layouts",
    "qwen3_rag.stores.elasticsearch",
    "qwen3_rag.stores.memory",
    "qwen3_rag.stores.analysis",
    "qwen3_rag.ingest",
    "qwen3_rag.beir",
    "qwen3_rag.cli",
]


def run_without_frameworks(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter whose import system refuses the frameworks."""
    return run_blocking(code, BLOCKED)


def run_blocking(code: str, blocked: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter that refuses the modules ``blocked`` and their submodules."""
    prelude = textwrap.dedent(
        f"""
        import importlib.abc, sys

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if any(name == b or name.startswith(b + ".") for b in {tuple(blocked)!r}):
                    raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)", name=name)
                return None

        sys.meta_path.insert(0, Block())
        """
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_block_works() -> None:
    result = run_without_frameworks("import haystack")
    assert result.returncode != 0 and "blocked" in result.stderr


def test_neutral_modules_import_without_either_framework() -> None:
    result = run_without_frameworks(
        "import importlib\n" + "".join(f"importlib.import_module({name!r})\n" for name in NEUTRAL_MODULES)
    )
    assert result.returncode == 0, result.stderr


def test_a_missing_framework_names_the_extra_to_install() -> None:
    result = run_without_frameworks(
        """
        from qwen3_rag.service import framework_class
        from qwen3_rag.settings import Settings
        for framework in ("haystack", "llamaindex"):
            try:
                framework_class(Settings.from_env(environ={}, framework=framework, device="cpu"))
            except ModuleNotFoundError as error:
                print(error)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'qwen3-rerank[haystack-pipelines]'" in result.stdout
    assert "pip install 'qwen3-rerank[llamaindex-pipelines]'" in result.stdout


def test_a_pipeline_command_without_its_framework_prints_the_install_line(tmp_path: Path) -> None:
    result = run_without_frameworks(
        f"""
        import sys
        from qwen3_rerank.cli import main
        sys.argv = ["qwen3-rerank", "ask", "anything", "--data-dir", {str(tmp_path)!r}]
        main()
        """
    )
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 1, output
    assert "pip install 'qwen3-rerank[haystack-pipelines]'" in output
    assert "Traceback" not in output


def test_the_embedded_store_imports_without_haystack() -> None:
    result = run_without_frameworks("import qwen3_rag.stores.memory")
    assert result.returncode == 0, result.stderr


def test_chunking_works_without_llamaindex() -> None:
    result = run_without_frameworks(
        """
        from qwen3_rag.ingest import Chunker
        from qwen3_rag.records import SourceText
        chunks = Chunker(32, 4).split(SourceText("Water boils at 100 degrees. " * 20, "water.md"))
        assert len(chunks) > 1
        """
    )
    assert result.returncode == 0, result.stderr


def layer_modules(folders: Sequence[str]) -> list[str]:
    """The importable modules of a layer's folders, less those of another layer inside them."""
    own = {ROOT / folder for folder in folders}
    every = {ROOT / folder for paths, _ in LAYERS.values() for folder in paths}
    others = {path for path in every - own if any(mine in path.parents for mine in own)}
    modules = []
    for folder in folders:
        top = ROOT / folder
        for path in sorted([top] if top.suffix else top.rglob("*.py")):
            if any(path == other or other in path.parents for other in others) or "__pycache__" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts[1:]
            modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


@pytest.mark.parametrize("layer", list(LAYERS))
def test_each_layer_imports_with_the_layers_above_it_blocked(layer: str) -> None:
    folders, above = LAYERS[layer]
    modules = layer_modules(folders)
    assert modules, f"no modules found for {layer}"
    code = "import importlib\n" + "".join(f"importlib.import_module({name!r})\n" for name in modules)
    result = run_blocking(code, above)
    assert result.returncode == 0, f"{layer} imports upwards:\n{result.stderr}"


def test_the_layer_check_fails_on_an_upward_import() -> None:
    """What the Haystack retriever did from plugins/ before it moved to the pipelines layer."""
    result = run_blocking("from qwen3_rag.retrieval import HybridRetriever", LAYERS["adapters"][1])
    assert result.returncode != 0 and "blocked" in result.stderr
