"""One process, one loaded model per (model, device, dtype, revision)."""

import threading

import pytest

from qwen3_rerank import Qwen3Reranker, loading, shared_models


@pytest.fixture
def load_calls(monkeypatch):
    calls = []
    real_load = loading.load_model

    def counting_load(config):
        calls.append(config.key)
        return real_load(config)

    monkeypatch.setattr("qwen3_rerank.reranker.load_model", counting_load)
    return calls


def test_same_settings_load_the_weights_once(tiny_qwen3_dir, load_calls):
    first = Qwen3Reranker(str(tiny_qwen3_dir), device="cpu", max_length=512)
    second = Qwen3Reranker(str(tiny_qwen3_dir), device="cpu", instruction="other task")
    assert len(load_calls) == 1
    assert first.loaded_model is second.loaded_model


def test_a_different_dtype_is_a_different_model(tiny_qwen3_dir, load_calls):
    held = [
        Qwen3Reranker(str(tiny_qwen3_dir), device="cpu", dtype=dtype) for dtype in ("float32", "bfloat16")
    ]
    assert len(load_calls) == len(held) == 2
    loaded = shared_models.keys()
    assert {key.dtype for key in loaded} == {"float32", "bfloat16"}


def test_the_model_is_freed_when_its_last_user_closes(tiny_qwen3_dir):
    first = Qwen3Reranker(str(tiny_qwen3_dir), device="cpu")
    with Qwen3Reranker(str(tiny_qwen3_dir), device="cpu"):
        pass
    assert len(shared_models.keys()) == 1
    first.close()
    assert shared_models.keys() == []


def test_a_closed_reranker_says_so(tiny_qwen3_dir):
    reranker = Qwen3Reranker(str(tiny_qwen3_dir), device="cpu")
    reranker.close()
    reranker.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        reranker.score("query", ["document"])


def test_threads_asking_at_once_share_one_load(tiny_qwen3_dir, load_calls):
    rerankers = []
    threads = [
        threading.Thread(target=lambda: rerankers.append(Qwen3Reranker(str(tiny_qwen3_dir), device="cpu")))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(load_calls) == 1
    assert len({id(reranker.loaded_model) for reranker in rerankers}) == 1


def test_a_release_during_a_load_on_the_same_thread_does_not_deadlock():
    # A garbage-collected handle gives its use back from a finalizer, which can run in the
    # middle of another model's load, on the thread that holds the registry's lock.
    from qwen3_rerank.registry import ModelRegistry

    registry = ModelRegistry()
    registry.acquire("old", lambda: "old model")

    def load_while_a_handle_is_collected() -> str:
        registry.release("old")
        return "new model"

    worker = threading.Thread(target=registry.acquire, args=("new", load_while_a_handle_is_collected))
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "release inside a load deadlocked on the registry lock"
    assert registry.keys() == ["new"]


def test_clear_collects_garbage_only_when_it_dropped_a_model(tiny_qwen3_dir, monkeypatch):
    # Tests clear the registry around each test; a full collection there cost half a second each.
    collections = []
    monkeypatch.setattr("qwen3_rerank.registry._free_memory", lambda: collections.append(1))
    shared_models.clear()
    assert collections == []
    Qwen3Reranker(str(tiny_qwen3_dir), device="cpu")
    shared_models.clear()
    assert shared_models.keys() == [] and collections == [1]
