"""Server settings from the environment, their documentation, and the ``serve`` command."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from fastapi import FastAPI
from typer.testing import CliRunner

from qwen3_rag.server.cli import register
from qwen3_rag.server.settings import ServerSettings, env_name
from qwen3_rag.settings import ENVIRONMENT
from qwen3_rerank.cli import full_app
from tests.server_client import LocalTestClient


def test_environment_variables_fill_the_settings(tmp_path: Path) -> None:
    settings = ServerSettings.from_env(
        {
            "QWEN3_RERANK_MODEL": "/models/reranker",
            "QWEN3_RAG_DEVICE": "cuda:1",
            "QWEN3_SERVER_PORT": "9001",
            "QWEN3_SERVER_QUEUE_SIZE": "5",
            "QWEN3_SERVER_RAG": "off",
            "QWEN3_SERVER_SAMPLE_CORPUS": str(tmp_path),
        }
    )
    assert (settings.reranker_model, settings.device, settings.port, settings.queue_size) == (
        "/models/reranker",
        "cuda:1",
        9001,
        5,
    )
    assert settings.rag == "off" and settings.sample_corpus == tmp_path


def test_overrides_win_over_the_environment_and_none_falls_through() -> None:
    settings = ServerSettings.from_env(
        {"QWEN3_SERVER_PORT": "9001", "QWEN3_SERVER_HOST": "0.0.0.0"}, port=7000, host=None
    )
    assert settings.port == 7000 and settings.host == "0.0.0.0"


def test_empty_variables_count_as_unset() -> None:
    assert ServerSettings.from_env({"QWEN3_RAG_DEVICE": "", "QWEN3_SERVER_PORT": ""}).port == 8000


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("QWEN3_SERVER_MAX_DOCUMENTS", "many", r"max_documents \(QWEN3_SERVER_MAX_DOCUMENTS\)"),
        ("QWEN3_SERVER_QUEUE_SIZE", "0", "queue_size"),
        ("QWEN3_SERVER_RAG", "maybe", "rag"),
        ("QWEN3_SERVER_PORT", "70000", "port"),
    ],
)
def test_a_bad_value_names_the_setting(variable: str, value: str, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        ServerSettings.from_env({variable: value})


def test_unknown_overrides_are_refused() -> None:
    with pytest.raises(TypeError, match="max_docs"):
        ServerSettings.from_env({}, max_docs=3)


def test_shared_settings_use_the_pipelines_variable_names() -> None:
    assert env_name("reranker_model") == ENVIRONMENT["reranker_model"] == "QWEN3_RERANK_MODEL"
    assert env_name("device") == ENVIRONMENT["device"] == "QWEN3_RAG_DEVICE"


def cli() -> typer.Typer:
    """A CLI shaped like ``qwen3-rerank``: a group to which the entry point adds ``serve``."""
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """The root command."""

    register(app)
    return app


def test_serve_is_registered_on_the_cli() -> None:
    command = typer.main.get_command(cli())
    serve = command.commands["serve"]
    assert {"host", "port", "reranker_model", "device", "rag", "sample_corpus", "index_layout"} <= {
        p.name for p in serve.params
    }


def test_serve_rejects_a_bad_setting_before_loading_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QWEN3_SERVER_QUEUE_SIZE", "-3")
    result = CliRunner().invoke(full_app(), ["serve", "--rag", "off"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: queue_size (QWEN3_SERVER_QUEUE_SIZE): Input should be greater")


def test_serve_index_layout_reaches_the_pipeline_behind_ask(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_qwen3_dir: Path
) -> None:
    import uvicorn

    served: dict[str, str] = {}

    def run(app: FastAPI, **options: object) -> None:  # start the app's lifespan instead of a server
        with LocalTestClient(app):
            served["index_layout"] = app.state.qwen3.rag.settings.index_layout

    monkeypatch.setattr(uvicorn, "run", run)
    env = {
        "QWEN3_RERANK_MODEL": str(tiny_qwen3_dir),
        "QWEN3_RAG_DEVICE": "cpu",
        "QWEN3_RAG_BACKEND": "memory",
        "QWEN3_RAG_DATA_DIR": str(tmp_path),
        "QWEN3_RAG_INDEX_LAYOUT": "llamaindex",  # the flag wins over the environment
    }
    result = CliRunner().invoke(full_app(), ["serve", "--rag", "on", "--index-layout", "haystack"], env=env)
    assert result.exit_code == 0, result.output
    assert served == {"index_layout": "haystack"}
