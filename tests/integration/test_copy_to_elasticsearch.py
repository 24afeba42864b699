"""``qwen3-rerank index --from DATA_DIR --backend elasticsearch``: an embedded index copied into
Elasticsearch without re-embedding, served through an alias only once it is complete."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from elasticsearch import Elasticsearch
from typer.testing import CliRunner

from qwen3_rag import migrate
from qwen3_rag.embedding import Embedder
from qwen3_rag.testing import SAMPLES_DIR
from qwen3_rerank.cli import full_app

pytestmark = pytest.mark.integration

QUESTION = "At what temperature does water boil at sea level?"


@pytest.fixture
def app() -> typer.Typer:
    return full_app()


@pytest.fixture
def client(es_url: str, index_name: str) -> Iterator[Elasticsearch]:
    """A client; afterwards every index the copies made for this test's name goes (an alias
    cannot be deleted by its name, so the concrete indices are listed and deleted one by one)."""
    client = Elasticsearch(es_url, request_timeout=30)
    yield client
    for name in client.indices.get(index=f"{index_name}*", ignore_unavailable=True):
        client.indices.delete(index=name, ignore_unavailable=True)
    client.close()


@pytest.fixture
def embedded(app: typer.Typer, cli_env: dict[str, str], tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The samples indexed into an embedded store of this test's index name; returns its data
    directory and the environment that asks it (the Elasticsearch one is ``cli_env``)."""
    data_dir = tmp_path / "embedded"
    env = {**cli_env, "QWEN3_RAG_BACKEND": "memory", "QWEN3_RAG_DATA_DIR": str(data_dir)}
    result = CliRunner().invoke(app, ["index", str(SAMPLES_DIR)], env=env)
    assert result.exit_code == 0, result.output
    return data_dir, env


def _copy(app: typer.Typer, env: dict[str, str], data_dir: Path, *extra: str) -> object:
    return CliRunner().invoke(app, ["index", "--from", str(data_dir), *extra], env=env)


def _ask(app: typer.Typer, env: dict[str, str]) -> dict:
    result = CliRunner().invoke(app, ["ask", QUESTION, "--json", "--top-n", "3"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_copy_answers_as_the_embedded_index_without_embedding(
    app: typer.Typer,
    cli_env: dict[str, str],
    embedded: tuple[Path, dict[str, str]],
    client: Elasticsearch,
    index_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data_dir, memory_env = embedded

    def no_embedding(*args: object, **kwargs: object) -> None:
        raise AssertionError("the copy embedded text")

    with monkeypatch.context() as patch:
        patch.setattr(Embedder, "embed_documents", no_embedding)
        patch.setattr(Embedder, "embed_query", no_embedding)
        copied = _copy(app, cli_env, data_dir)
    assert copied.exit_code == 0, copied.output
    assert "no re-embedding" in copied.output

    (concrete,) = client.indices.get_alias(name=index_name)
    recorded = client.indices.get_mapping(index=index_name)[concrete]["mappings"]["_meta"]["qwen3_rag"]
    assert recorded["embedding_model"] == cli_env["QWEN3_RAG_EMBEDDING_MODEL"]
    assert recorded["dimension"] == 384
    before, after = _ask(app, memory_env), _ask(app, cli_env)
    assert [p["id"] for p in after["passages"]] == [p["id"] for p in before["passages"]]
    assert [p["id"] for p in after["stages"]["dense"]] == [p["id"] for p in before["stages"]["dense"]]
    assert after["passages"][0]["source"] == before["passages"][0]["source"]


def test_a_second_copy_swaps_the_alias_and_a_failed_one_leaves_it_serving(
    app: typer.Typer,
    cli_env: dict[str, str],
    embedded: tuple[Path, dict[str, str]],
    client: Elasticsearch,
    index_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data_dir, _ = embedded
    assert _copy(app, cli_env, data_dir).exit_code == 0
    (first,) = client.indices.get_alias(name=index_name)
    count = client.count(index=index_name)["count"]

    assert _copy(app, cli_env, data_dir).exit_code == 0
    (second,) = client.indices.get_alias(name=index_name)
    assert second != first
    assert not client.indices.exists(index=first)  # the index it replaced is gone
    assert client.count(index=index_name)["count"] == count

    def half_then_fail(source: object) -> Iterator[object]:
        yield from list(real_batches(source))[:1]
        raise RuntimeError("the copy stopped half-way")

    real_batches = migrate._batches
    monkeypatch.setattr(migrate, "EXPORT_BATCH_ROWS", 2)
    monkeypatch.setattr(migrate, "_batches", half_then_fail)
    failed = _copy(app, cli_env, data_dir)
    assert failed.exit_code == 1
    assert "half-way" in failed.output
    assert list(client.indices.get_alias(name=index_name)) == [second]
    assert client.count(index=index_name)["count"] == count
    assert sorted(client.indices.get(index=f"{index_name}*")) == [second]  # the partial copy was deleted


def test_a_copy_embedded_by_another_model_is_refused(
    app: typer.Typer,
    cli_env: dict[str, str],
    embedded: tuple[Path, dict[str, str]],
    client: Elasticsearch,
    index_name: str,
    tiny_qwen3_dir: Path,
) -> None:
    data_dir, _ = embedded
    result = _copy(app, cli_env, data_dir, "--embedding-model", str(tiny_qwen3_dir))
    assert result.exit_code == 1
    assert "was embedded with" in result.output
    assert "--embedding-model" in result.output
    assert not client.indices.get(index=f"{index_name}*", ignore_unavailable=True)


def test_an_index_without_a_recorded_model_is_checked_by_dimension(
    cli_env: dict[str, str],
    embedded: tuple[Path, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from qwen3_rag.settings import Settings
    from qwen3_rag.stores import StoreError

    settings = Settings.from_env(environ=cli_env)
    manifest = {"rows": 15, "dimension": 384}  # as an index written before the model was recorded
    monkeypatch.setattr(Embedder, "dimension", 768)
    with pytest.raises(StoreError, match=r"holds 384-dimensional embeddings .* gives 768"):
        migrate.check_embedding_model(manifest, settings, "the store")
    monkeypatch.setattr(Embedder, "dimension", 384)
    migrate.check_embedding_model(manifest, settings, "the store")


def test_a_concrete_index_of_that_name_is_not_replaced(
    app: typer.Typer,
    cli_env: dict[str, str],
    embedded: tuple[Path, dict[str, str]],
    client: Elasticsearch,
    index_name: str,
) -> None:
    data_dir, _ = embedded
    assert CliRunner().invoke(app, ["index", str(SAMPLES_DIR / "water.md")], env=cli_env).exit_code == 0
    result = _copy(app, cli_env, data_dir)
    assert result.exit_code == 1
    assert "is an index, not an alias" in result.output
    assert client.count(index=index_name)["count"] > 0


def test_from_needs_elasticsearch_and_no_paths(
    app: typer.Typer, embedded: tuple[Path, dict[str, str]]
) -> None:
    data_dir, memory_env = embedded
    result = _copy(app, memory_env, data_dir)
    assert result.exit_code == 1
    assert "--backend elasticsearch" in result.output
    both = CliRunner().invoke(app, ["index", str(SAMPLES_DIR), "--from", str(data_dir)], env=memory_env)
    assert both.exit_code == 1
    assert "not both" in both.output
