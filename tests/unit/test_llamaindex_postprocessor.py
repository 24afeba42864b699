"""`Qwen3Rerank` behaves like a LlamaIndex reranker and ranks exactly as the core does."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llama_index.core import MockEmbedding, VectorStoreIndex
from llama_index.core.callbacks import CallbackManager, CBEventType, EventPayload, LlamaDebugHandler
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.llms import MockLLM
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode
from pydantic import Field, ValidationError

from llama_index.postprocessor.qwen3_rerank import RETRIEVAL_SCORE_KEY, Qwen3Rerank
from qwen3_rerank import Qwen3Reranker

QUERY = "How does BM25 rank documents?"
TEXTS = [
    "BM25 ranks documents by term frequency and inverse document frequency.",
    "Paris is the capital of France.",
    "Dense retrievers embed queries and passages into one vector space.",
    "A reranker reads the query and the passage together.",
    "The Eiffel Tower was finished in 1889.",
    "Reciprocal rank fusion merges several ranked lists.",
]


@pytest.fixture
def model_dir(tiny_qwen3_dir: Path) -> str:
    return str(tiny_qwen3_dir)


@pytest.fixture
def nodes() -> list[NodeWithScore]:
    return [
        NodeWithScore(
            node=TextNode(text=text, id_=f"n{index}", metadata={"source": f"doc{index}.txt"}), score=0.1
        )
        for index, text in enumerate(TEXTS)
    ]


@pytest.fixture
def core(model_dir: str) -> Iterator[Qwen3Reranker]:
    with Qwen3Reranker(model_dir, device="cpu") as reranker:
        yield reranker


def expected_ids(core: Qwen3Reranker, nodes: list[NodeWithScore], top_n: int) -> list[str]:
    texts = [scored.node.get_content(metadata_mode=MetadataMode.EMBED) for scored in nodes]
    return [nodes[result.index].node.node_id for result in core.rerank(QUERY, texts, top_n=top_n)]


def test_is_a_node_postprocessor_with_a_class_name() -> None:
    assert issubclass(Qwen3Rerank, BaseNodePostprocessor)
    assert Qwen3Rerank.class_name() == "Qwen3Rerank"


def test_init_defaults_describe_the_loaded_model(model_dir: str) -> None:
    rerank = Qwen3Rerank(model=model_dir, device="cpu")
    assert rerank.model == model_dir
    assert rerank.top_n == 5
    assert rerank.instruction is None
    assert rerank.score_threshold is None
    assert rerank.keep_retrieval_score is False
    assert (rerank.device, rerank.dtype, rerank.max_length) == ("cpu", "float32", 8192)
    assert rerank.long_documents == "truncate"
    assert rerank.batch_tokens == rerank.reranker.config.batch_tokens


def test_to_dict_round_trip_rebuilds_an_equal_postprocessor_on_the_same_weights(model_dir: str) -> None:
    rerank = Qwen3Rerank(
        model=model_dir,
        device="cpu",
        top_n=3,
        instruction="Find the clause",
        batch_tokens=1024,
        long_documents="window",
        window_overlap=16,
        keep_retrieval_score=True,
        score_threshold=0.25,
    )
    data = rerank.to_dict()
    assert data["class_name"] == "Qwen3Rerank"
    restored = Qwen3Rerank.from_dict(data)
    assert restored.to_dict() == data
    assert restored.reranker.loaded_model is rerank.reranker.loaded_model


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("top_n", 0),
        ("max_length", -1),
        ("batch_tokens", 0),
        ("window_overlap", -1),
        ("long_documents", "chunk"),
    ],
)
def test_bad_arguments_fail_before_any_model_is_loaded(field: str, value: Any) -> None:
    # The model path does not exist: a ValidationError (not an OSError) proves nothing was loaded.
    with pytest.raises(ValidationError, match=field):
        Qwen3Rerank(model="/no/such/model", **{field: value})


def test_missing_query_bundle_is_an_error(model_dir: str, nodes: list[NodeWithScore]) -> None:
    with pytest.raises(ValueError, match="query"):
        Qwen3Rerank(model=model_dir, device="cpu").postprocess_nodes(nodes)


def test_empty_input_gives_empty_output(model_dir: str) -> None:
    assert Qwen3Rerank(model=model_dir, device="cpu").postprocess_nodes([], query_str=QUERY) == []


def test_returns_the_cores_ranking_and_scores(
    model_dir: str, core: Qwen3Reranker, nodes: list[NodeWithScore]
) -> None:
    reranked = Qwen3Rerank(model=model_dir, device="cpu", top_n=4).postprocess_nodes(nodes, query_str=QUERY)
    texts = [scored.node.get_content(metadata_mode=MetadataMode.EMBED) for scored in nodes]
    expected = core.rerank(QUERY, texts, top_n=4)
    assert [scored.node.node_id for scored in reranked] == [nodes[r.index].node.node_id for r in expected]
    assert [scored.score for scored in reranked] == [r.score for r in expected]
    assert all(type(scored.score) is float for scored in reranked)


def test_scores_the_embed_view_of_each_node(model_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    node = TextNode(
        text="BM25 is a bag-of-words ranking function.",
        metadata={"title": "Okapi BM25", "internal_id": "secret-42"},
        excluded_embed_metadata_keys=["internal_id"],
    )
    rerank = Qwen3Rerank(model=model_dir, device="cpu")
    seen: list[list[str]] = []
    original = rerank.reranker.rerank
    monkeypatch.setattr(
        rerank.reranker, "rerank", lambda q, docs, **kw: seen.append(list(docs)) or original(q, docs, **kw)
    )
    rerank.postprocess_nodes([NodeWithScore(node=node, score=1.0)], query_str=QUERY)
    assert seen == [[node.get_content(metadata_mode=MetadataMode.EMBED)]]
    assert "Okapi BM25" in seen[0][0]
    assert "secret-42" not in seen[0][0]


def test_callers_nodes_are_not_mutated(model_dir: str, nodes: list[NodeWithScore]) -> None:
    before = copy.deepcopy(nodes)
    reranked = Qwen3Rerank(
        model=model_dir, device="cpu", top_n=3, keep_retrieval_score=True
    ).postprocess_nodes(nodes, query_str=QUERY)
    assert [(n.score, n.node.metadata, n.node.excluded_llm_metadata_keys) for n in nodes] == [
        (n.score, n.node.metadata, n.node.excluded_llm_metadata_keys) for n in before
    ]
    assert all(out is not original for out in reranked for original in nodes)


def test_kept_retrieval_score_never_reaches_model_text(model_dir: str, nodes: list[NodeWithScore]) -> None:
    nodes[0].score = 0.123456
    first = Qwen3Rerank(model=model_dir, device="cpu", top_n=len(nodes), keep_retrieval_score=True)
    reranked = first.postprocess_nodes(nodes, query_str=QUERY)
    kept = next(scored for scored in reranked if scored.node.node_id == "n0")
    assert kept.node.metadata[RETRIEVAL_SCORE_KEY] == 0.123456
    for mode in (MetadataMode.EMBED, MetadataMode.LLM):
        assert "0.123456" not in kept.node.get_content(metadata_mode=mode)
        assert kept.node.get_content(metadata_mode=mode) == nodes[0].node.get_content(metadata_mode=mode)
    # A second reranker down the line reads the same text and ranks the same way.
    again = Qwen3Rerank(model=model_dir, device="cpu", top_n=len(nodes)).postprocess_nodes(
        reranked, query_str=QUERY
    )
    assert [n.node.node_id for n in again] == [n.node.node_id for n in reranked]


def test_retrieval_score_is_not_kept_by_default(model_dir: str, nodes: list[NodeWithScore]) -> None:
    reranked = Qwen3Rerank(model=model_dir, device="cpu").postprocess_nodes(nodes, query_str=QUERY)
    assert all(RETRIEVAL_SCORE_KEY not in scored.node.metadata for scored in reranked)


def test_score_threshold_applies_before_top_n(
    model_dir: str, core: Qwen3Reranker, nodes: list[NodeWithScore]
) -> None:
    texts = [scored.node.get_content(metadata_mode=MetadataMode.EMBED) for scored in nodes]
    scores = sorted(core.score(QUERY, texts), reverse=True)
    threshold = scores[2]  # exactly three nodes reach it (random scores are distinct)
    rerank = Qwen3Rerank(model=model_dir, device="cpu", top_n=5, score_threshold=threshold)
    reranked = rerank.postprocess_nodes(nodes, query_str=QUERY)
    assert [scored.score for scored in reranked] == scores[:3]


def test_instruction_is_passed_to_the_core(
    model_dir: str, core: Qwen3Reranker, nodes: list[NodeWithScore]
) -> None:
    instruction = "Given a question, retrieve passages that explain ranking functions"
    rerank = Qwen3Rerank(model=model_dir, device="cpu", top_n=len(nodes), instruction=instruction)
    reranked = rerank.postprocess_nodes(nodes, query_str=QUERY)
    texts = [scored.node.get_content(metadata_mode=MetadataMode.EMBED) for scored in nodes]
    assert [n.score for n in reranked] == [
        r.score for r in core.rerank(QUERY, texts, instruction=instruction)
    ]
    assert [n.score for n in reranked] != [r.score for r in core.rerank(QUERY, texts)]


async def test_async_matches_sync_and_scores_off_the_event_loop(
    model_dir: str, nodes: list[NodeWithScore], monkeypatch: pytest.MonkeyPatch
) -> None:
    rerank = Qwen3Rerank(model=model_dir, device="cpu", top_n=3)
    expected = rerank.postprocess_nodes(nodes, query_str=QUERY)
    scoring_threads: list[int] = []
    original = rerank.reranker.rerank

    def spy(*args: Any, **kwargs: Any) -> Any:
        scoring_threads.append(threading.get_ident())
        return original(*args, **kwargs)

    monkeypatch.setattr(rerank.reranker, "rerank", spy)
    reranked = await rerank.apostprocess_nodes(nodes, query_bundle=QueryBundle(QUERY))
    assert [(n.node.node_id, n.score) for n in reranked] == [(n.node.node_id, n.score) for n in expected]
    assert scoring_threads and threading.get_ident() not in scoring_threads


async def test_async_missing_query_bundle_is_an_error(model_dir: str, nodes: list[NodeWithScore]) -> None:
    with pytest.raises(ValueError, match="query"):
        await Qwen3Rerank(model=model_dir, device="cpu").apostprocess_nodes(nodes)


class _Recorder(BaseEventHandler):
    events: list[BaseEvent] = Field(default_factory=list)

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.events.append(event)


@pytest.fixture
def recorder() -> Iterator[_Recorder]:
    handler = _Recorder()
    root = get_dispatcher()
    root.add_event_handler(handler)
    yield handler
    root.event_handlers.remove(handler)


@pytest.mark.parametrize("use_async", [False, True])
async def test_emits_rerank_events_and_callbacks(
    model_dir: str, nodes: list[NodeWithScore], recorder: _Recorder, use_async: bool
) -> None:
    debug = LlamaDebugHandler()
    rerank = Qwen3Rerank(model=model_dir, device="cpu", top_n=2, callback_manager=CallbackManager([debug]))
    if use_async:
        reranked = await rerank.apostprocess_nodes(nodes, query_str=QUERY)
    else:
        reranked = rerank.postprocess_nodes(nodes, query_str=QUERY)

    starts = [e for e in recorder.events if isinstance(e, ReRankStartEvent)]
    ends = [e for e in recorder.events if isinstance(e, ReRankEndEvent)]
    assert len(starts) == len(ends) == 1
    assert (starts[0].top_n, starts[0].model_name, starts[0].query.query_str) == (2, model_dir, QUERY)
    assert [n.node.node_id for n in ends[0].nodes] == [n.node.node_id for n in reranked]
    [(start, end)] = debug.get_event_pairs(CBEventType.RERANKING)
    assert start.payload is not None and start.payload[EventPayload.QUERY_STR] == QUERY
    assert end.payload is not None and end.payload[EventPayload.NODES] == reranked


def test_ranks_source_nodes_of_a_query_engine(model_dir: str, core: Qwen3Reranker) -> None:
    documents = [TextNode(text=text, id_=f"n{index}") for index, text in enumerate(TEXTS)]
    index = VectorStoreIndex(documents, embed_model=MockEmbedding(embed_dim=8))
    engine = index.as_query_engine(
        llm=MockLLM(max_tokens=8),
        similarity_top_k=len(TEXTS),
        node_postprocessors=[Qwen3Rerank(model=model_dir, device="cpu", top_n=3)],
    )
    response = engine.query(QUERY)
    retrieved = index.as_retriever(similarity_top_k=len(TEXTS)).retrieve(QUERY)
    assert [n.node.node_id for n in response.source_nodes] == expected_ids(core, retrieved, top_n=3)


def test_explicit_reranker_is_used_and_left_open(core: Qwen3Reranker, nodes: list[NodeWithScore]) -> None:
    rerank = Qwen3Rerank(reranker=core, top_n=2)
    assert rerank.reranker.config == core.config
    assert rerank.reranker.loaded_model is core.loaded_model
    assert (rerank.model, rerank.device) == (core.model_id, "cpu")
    assert [n.node.node_id for n in rerank.postprocess_nodes(nodes, query_str=QUERY)] == expected_ids(
        core, nodes, 2
    )
    rerank.close()
    assert core.score(QUERY, [TEXTS[0]])


def test_explicit_reranker_with_contradicting_settings_is_an_error(core: Qwen3Reranker) -> None:
    with pytest.raises(ValueError, match="max_length=512"):
        Qwen3Rerank(reranker=core, max_length=512)


def test_close_releases_the_weights_it_loaded(model_dir: str) -> None:
    from qwen3_rerank import shared_models

    rerank = Qwen3Rerank(model=model_dir, device="cpu")
    assert len(shared_models.keys()) == 1
    rerank.close()
    assert shared_models.keys() == []
