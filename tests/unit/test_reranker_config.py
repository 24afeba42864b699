"""`RerankerConfig`: load settings normalised once and compared by value."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from haystack.utils import ComponentDevice

from haystack_integrations.components.rankers.qwen3 import Qwen3Ranker
from llama_index.postprocessor.qwen3_rerank import Qwen3Rerank
from qwen3_rerank import Qwen3Reranker, RerankerConfig, shared_models


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"device": "cuda", "dtype": "bfloat16"}, {"device": "cuda:0", "dtype": torch.bfloat16}),
        (
            {"device": torch.device("cuda"), "dtype": "torch.float16"},
            {"device": "cuda:0", "dtype": "float16"},
        ),
        ({"device": "cpu", "dtype": "float32"}, {"device": torch.device("cpu"), "dtype": torch.float32}),
        ({"device": "cpu"}, {"device": "cpu", "dtype": "auto", "batch_tokens": 1024}),
    ],
)
def test_spellings_of_one_setting_are_one_config_and_one_registry_key(first: dict, second: dict) -> None:
    assert RerankerConfig(**first) == RerankerConfig(**second)
    assert RerankerConfig(**first).key == RerankerConfig(**second).key
    assert hash(RerankerConfig(**first)) == hash(RerankerConfig(**second))


def test_the_device_and_dtype_are_resolved_once() -> None:
    config = RerankerConfig(device="cuda", dtype="float32")
    assert (config.device, config.dtype, config.batch_tokens) == ("cuda:0", torch.float32, 32768)
    assert config.to_dict()["dtype"] == "float32"


def test_where_weights_come_from_is_not_part_of_equality_and_the_token_is_hidden() -> None:
    config = RerankerConfig(device="cpu", token="hf_secret", cache_dir="/tmp/cache")
    assert config == RerankerConfig(device="cpu")
    assert "hf_secret" not in repr(config) and "token" not in config.to_dict()


def test_instruction_and_lengths_change_the_config_but_not_the_weights() -> None:
    plain, other = RerankerConfig(device="cpu"), RerankerConfig(device="cpu", instruction="x", max_length=512)
    assert plain != other and plain.key == other.key


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("max_length", 0, "max_length must be a positive int"),
        ("batch_tokens", True, "batch_tokens must be a positive int"),
        ("window_overlap", -1, "window_overlap must be a non-negative int"),
        ("long_documents", "chunk", "long_documents must be 'truncate' or 'window'"),
        ("dtype", "int8", "dtype must be one of"),
        ("device", "gpu", "device must be like"),
        ("model", " ", "model must be a Hub id"),
    ],
)
def test_bad_values_name_the_setting(setting: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RerankerConfig(**{setting: value})


def test_merge_accepts_restated_settings_and_refuses_contradictions() -> None:
    config = RerankerConfig(device="cuda:0", dtype="bfloat16", max_length=1024)
    assert config.merge(device="cuda", dtype=torch.bfloat16, max_length=8192) == config
    with pytest.raises(ValueError, match="max_length=512"):
        config.merge(max_length=512)


def test_cpu_spellings_share_one_model_across_both_adapters(tiny_qwen3_dir: Path) -> None:
    model = str(tiny_qwen3_dir)
    core = Qwen3Reranker(model, device="cpu", dtype=torch.float32)
    postprocessor = Qwen3Rerank(model=model, device="cpu", dtype="float32")
    ranker = Qwen3Ranker(
        model=model, device=ComponentDevice.from_str("cpu"), model_kwargs={"torch_dtype": "torch.float32"}
    )
    ranker.warm_up()
    assert ranker.reranker is not None
    assert core.config == postprocessor.reranker.config == ranker.reranker.config
    assert core.loaded_model is postprocessor.reranker.loaded_model is ranker.reranker.loaded_model
    assert len(shared_models.keys()) == 1
    # The registry's reference count is the one owner record.
    core.close()
    postprocessor.close()
    assert len(shared_models.keys()) == 1
    ranker.close()
    assert shared_models.keys() == []


def test_an_adapter_given_a_reranker_accepts_restated_settings(tiny_qwen3_dir: Path) -> None:
    with Qwen3Reranker(str(tiny_qwen3_dir), device="cpu") as core:
        postprocessor = Qwen3Rerank(reranker=core, device="cpu", dtype="float32")
        ranker = Qwen3Ranker(reranker=core, model_kwargs={"dtype": torch.float32})
        assert postprocessor.reranker.loaded_model is core.loaded_model
        assert ranker.model_kwargs == {"dtype": torch.float32}
        postprocessor.close()


def test_a_forgotten_reranker_gives_its_use_back_when_collected(tiny_qwen3_dir: Path) -> None:
    Qwen3Reranker(str(tiny_qwen3_dir), device="cpu")  # never closed, immediately unreachable
    import gc

    gc.collect()
    assert shared_models.keys() == []


def test_without_the_hub_a_hub_id_is_read_from_the_cache_only(
    monkeypatch: pytest.MonkeyPatch, tiny_qwen3_dir: Path
) -> None:
    from qwen3_rerank import loading

    monkeypatch.setattr(loading, "hub_reachable", lambda: False)
    assert loading.offline_options("Qwen/Qwen3-Reranker-0.6B") == {"local_files_only": True}
    assert loading.offline_options(str(tiny_qwen3_dir)) == {}


def test_an_uncached_model_offline_fails_in_one_line_naming_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from qwen3_rerank import loading

    monkeypatch.setattr(loading, "hub_reachable", lambda: False)
    with pytest.raises(OSError) as failure:
        Qwen3Reranker("nobody/no-such-reranker", device="cpu", cache_dir=str(tmp_path))
    message = str(failure.value)
    assert "\n" not in message
    for words in (
        "hf download nobody/no-such-reranker",
        "offline recipe",
        "Pass model=",
    ):
        assert words in message
