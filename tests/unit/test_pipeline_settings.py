"""Settings: flags beat the environment, which beats .env, which beats defaults; bad values
name themselves; every documented variable does what the table says."""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from qwen3_rag.server.settings import ServerSettings
from qwen3_rag.settings import (
    CPU_CANDIDATES,
    GPU_CANDIDATES,
    RerankerSettings,
    Settings,
    SettingsBase,
    variables,
    with_table,
)

PAGE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
DOCUMENTED = re.findall(r"^\| `([A-Z0-9_]+)` \| `(\w+)` \|", PAGE.read_text(), re.MULTILINE)
# Every model that reads the environment, with what an otherwise empty environment needs.
MODELS: list[type[SettingsBase]] = [Settings, ServerSettings]


def test_the_documented_table_is_generated_from_the_models() -> None:
    page = PAGE.read_text()
    assert with_table(page, Settings, ServerSettings) == page, (
        "docs/configuration.md is stale: run python -m qwen3_rag.server.settings docs/configuration.md"
    )


def literal_choices(annotation: Any) -> list[str]:
    if typing.get_origin(annotation) is typing.Literal:
        return list(typing.get_args(annotation))
    return [choice for arg in typing.get_args(annotation) for choice in literal_choices(arg)]


def sample(model: type[SettingsBase], name: str) -> str:
    """A valid value for a setting that differs from its default."""
    field = model.model_fields[name]
    default = field.default
    choices = literal_choices(field.annotation)
    if choices:
        return [choice for choice in choices if choice != default][-1]
    special = {"device": "cuda:1", "language": "german"}
    if name in special:
        return special[name]
    if isinstance(default, bool):
        return "false" if default else "true"
    if isinstance(default, tuple):
        return "alpha.example,beta.example"
    if isinstance(default, float):
        return str(default / 2)
    if isinstance(default, int) or "int" in str(field.annotation):
        return str(default * 2 if default else 333)
    return str(Path(__file__).parent) if "Path" in str(field.annotation) else "sample-value"


def rendered(value: Any) -> str:
    """A setting's value as an environment variable would spell it."""
    if isinstance(value, tuple):
        return ",".join(rendered(item) for item in value)
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return str(value)


@pytest.mark.parametrize(("variable", "name"), DOCUMENTED)
def test_every_documented_variable_changes_the_setting_it_names(variable: str, name: str) -> None:
    model = next(model for model in MODELS if name in model.model_fields)
    assert variables(model.model_fields[name])[0] == variable
    base = {"QWEN3_RAG_LLM_MODEL": "m"}  # so that QWEN3_RAG_LLM=openai is complete
    value = sample(model, name)
    default, changed = model.from_env(base), model.from_env(base | {variable: value})
    assert getattr(changed, name) != getattr(default, name)
    assert rendered(getattr(changed, name)).lower() == value.lower() or name == "device"
    if name in RerankerSettings.model_fields:
        assert changed.reranker_config() != default.reranker_config()


def test_an_older_variable_name_still_works() -> None:
    assert Settings.from_env({"QWEN3_RAG_TOP_K": "7"}).candidates == 7


def test_flags_override_the_environment_and_none_flags_do_not() -> None:
    environ = {"QWEN3_RAG_BACKEND": "elasticsearch", "QWEN3_RAG_TOP_N": "4"}
    settings = Settings.from_env(environ, backend=None, top_n=2, device="cpu")
    assert (settings.backend, settings.top_n) == ("elasticsearch", 2)


def test_a_dotenv_file_is_read_below_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("QWEN3_RAG_TOP_N=9\nQWEN3_RERANK_MODEL=/models/from-dotenv\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QWEN3_RAG_TOP_N", "3")
    settings = Settings.from_env()
    assert (settings.top_n, settings.reranker_model) == (3, "/models/from-dotenv")


def test_fewer_candidates_on_cpu_than_on_an_accelerator_over_the_same_chunks() -> None:
    cpu, gpu = Settings.from_env({}, device="cpu"), Settings.from_env({}, device="cuda")
    assert (cpu.candidates, gpu.candidates) == (CPU_CANDIDATES, GPU_CANDIDATES)
    assert cpu.candidates < gpu.candidates
    # One index serves both devices, so the chunking does not depend on the device.
    assert cpu.chunk_size == gpu.chunk_size
    assert Settings.from_env({}, device="cuda", candidates=7).candidates == 7


def test_pipeline_and_server_describe_one_reranker() -> None:
    environ = {"QWEN3_RERANK_MODEL": "/m", "QWEN3_RAG_DEVICE": "cuda", "QWEN3_RERANK_DTYPE": "float32"}
    pipeline, server = Settings.from_env(environ), ServerSettings.from_env(environ)
    assert pipeline.reranker_config() == server.reranker_config()
    assert pipeline.reranker_config().device == "cuda:0"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"backend": "sqlite"},
            r"backend \(QWEN3_RAG_BACKEND\): Input should be 'memory' or 'elasticsearch'",
        ),
        ({"top_n": 0}, r"top_n \(QWEN3_RAG_TOP_N\): Input should be greater than 0"),
        ({"chunk_overlap": 500}, "chunk_overlap must be smaller than chunk_size"),
        ({"index_name": "MyIndex"}, r"index_name \(QWEN3_RAG_INDEX\): must be a non-empty lower-case name"),
        ({"llm": "openai"}, "llm='openai' needs llm_model"),
    ],
)
def test_invalid_values_are_refused_with_the_setting_and_its_variable(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.from_env({}, device="cpu", **overrides)


def test_an_invalid_environment_value_names_the_variable_and_the_value() -> None:
    with pytest.raises(ValueError, match=r"candidates \(QWEN3_RAG_CANDIDATES\).*integer; got 'many'"):
        Settings.from_env({"QWEN3_RAG_CANDIDATES": "many"})


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(TypeError, match="unknown setting"):
        Settings.from_env({}, colour="blue")


def test_public_dict_leaves_out_secrets_and_rebuilds_the_settings(tmp_path: Path) -> None:
    secrets = {"es_api_key": "key", "es_password": "pw", "llm_api_key": "sk"}
    settings = Settings.from_env({}, data_dir=tmp_path, llm="openai", llm_model="m", **secrets)
    public = settings.to_public_dict()
    assert not set(secrets) & set(public)
    assert public["data_dir"] == str(tmp_path)
    assert not {"key", "pw", "sk"} & set(re.findall(r"'(\w+)'", repr(settings)))
    rebuilt = Settings.from_env({"ES_API_KEY": "key", "OPENAI_API_KEY": "sk"}, **public)
    assert rebuilt.replace(es_password="pw") == settings
