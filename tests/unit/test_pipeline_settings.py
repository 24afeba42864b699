"""Settings: flags beat the environment, which beats defaults; bad values name themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwen3_rag.settings import CPU_DEFAULTS, GPU_DEFAULTS, Settings


def test_environment_variables_configure_models_and_store(tmp_path: Path) -> None:
    environ = {
        "QWEN3_RERANK_MODEL": "/models/reranker",
        "QWEN3_RAG_EMBEDDING_MODEL": "/models/embedder",
        "QWEN3_RAG_DATA_DIR": str(tmp_path),
        "ES_URL": "https://es.example:9200",
        "ES_VERIFY_CERTS": "false",
        "QWEN3_RAG_TOP_N": "7",
    }
    settings = Settings.from_env(environ, device="cpu")
    assert settings.reranker_model == "/models/reranker"
    assert settings.embedding_model == "/models/embedder"
    assert settings.data_dir == tmp_path
    assert settings.es_url == "https://es.example:9200"
    assert settings.es_verify_certs is False
    assert settings.top_n == 7


def test_flags_override_the_environment_and_none_flags_do_not() -> None:
    settings = Settings.from_env({"QWEN3_RAG_BACKEND": "elasticsearch"}, backend=None, top_n=2, device="cpu")
    assert settings.backend == "elasticsearch"
    assert settings.top_n == 2
    assert Settings.from_env({"QWEN3_RAG_BACKEND": "elasticsearch"}, backend="memory").backend == "memory"


def test_defaults_are_smaller_on_cpu_than_on_an_accelerator() -> None:
    cpu = Settings.from_env({}, device="cpu")
    gpu = Settings.from_env({}, device="cuda")
    assert (cpu.top_k, cpu.chunk_size) == (CPU_DEFAULTS["top_k"], CPU_DEFAULTS["chunk_size"])
    assert (gpu.top_k, gpu.chunk_size) == (GPU_DEFAULTS["top_k"], GPU_DEFAULTS["chunk_size"])
    assert cpu.top_k < gpu.top_k and cpu.chunk_size < gpu.chunk_size


def test_an_invalid_environment_value_names_the_variable() -> None:
    with pytest.raises(ValueError, match="QWEN3_RAG_TOP_K='many'"):
        Settings.from_env({"QWEN3_RAG_TOP_K": "many"})


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("backend", "sqlite", "backend must be one of memory, elasticsearch"),
        ("framework", "langchain", "framework must be one of haystack, llamaindex"),
        ("top_n", 0, "top_n must be a positive integer"),
        ("chunk_overlap", 500, "chunk_overlap must be >= 0 and smaller than chunk_size"),
        ("index_name", "MyIndex", "index_name must be a non-empty lower-case name"),
    ],
)
def test_invalid_values_are_refused_with_the_field_name(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.from_env({}, device="cpu", **{field: value})


def test_an_llm_needs_a_model_name() -> None:
    with pytest.raises(ValueError, match="llm='openai' needs llm_model"):
        Settings.from_env({}, llm="openai")


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(TypeError, match="unknown setting"):
        Settings.from_env({}, colour="blue")


def test_public_dict_leaves_out_secrets_and_rebuilds_the_settings(tmp_path: Path) -> None:
    secrets = {"es_api_key": "key", "es_password": "pw", "llm_api_key": "sk"}
    settings = Settings.from_env({}, data_dir=tmp_path, llm="openai", llm_model="m", **secrets)
    public = settings.to_public_dict()
    assert not {"es_api_key", "es_password", "llm_api_key"} & set(public)
    assert public["data_dir"] == str(tmp_path)
    rebuilt = Settings.from_env({"ES_API_KEY": "key", "OPENAI_API_KEY": "sk"}, **public)
    assert rebuilt.replace(es_password="pw") == settings
