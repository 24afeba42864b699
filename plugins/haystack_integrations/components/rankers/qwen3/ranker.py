"""`Qwen3Ranker`: a Haystack ranker backed by the shared Qwen3 scoring core.

The component only translates: documents become texts for `qwen3_rerank.Qwen3Reranker.rerank`,
and its ranking becomes documents with scores. Prompting, batching and scoring live in the core,
so a LlamaIndex `Qwen3Rerank` in the same process scores identically and shares the weights.
"""

from __future__ import annotations

import asyncio
import dataclasses
from math import inf
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict, logging
from haystack.utils import ComponentDevice, Secret, deserialize_secrets_inplace
from haystack.utils.hf import deserialize_hf_model_kwargs, serialize_hf_model_kwargs

from qwen3_rerank import Qwen3Reranker
from qwen3_rerank.config import check_positive, knobs, load_settings
from qwen3_rerank.reranker import config_of, share

logger = logging.getLogger(__name__)

# The core's settings, in Haystack's spelling: `from_pretrained` options go in `model_kwargs` (with
# `torch_dtype` for `dtype`; anything else would be silently dropped), the device is a
# `ComponentDevice`, the token a `Secret`, and every other setting is an init parameter of its own.
MODEL_KWARGS = frozenset({spec.name for spec in knobs() if spec.pretrained} | {"torch_dtype"})
SETTINGS = [spec.name for spec in knobs() if not spec.pretrained and spec.name != "device"]
DEFAULTS = {spec.name: spec.default for spec in knobs()}


@component
class Qwen3Ranker:
    """
    Ranks documents by their relevance to the query with a Qwen3-Reranker (P(yes) in [0, 1]).

    ### Usage example

    ```python
    from haystack import Document
    from haystack_integrations.components.rankers.qwen3 import Qwen3Ranker

    ranker = Qwen3Ranker(model="Qwen/Qwen3-Reranker-0.6B", top_k=2)
    docs = [Document(content="Paris is in France."), Document(content="Berlin is in Germany.")]
    result = ranker.run(query="City in Germany", documents=docs)
    print(result["documents"][0].content)
    ```

    The load settings become one `qwen3_rerank.RerankerConfig` in `warm_up`; components whose
    configs name the same model, device, dtype and revision share the weights through the core's
    registry. Pass ``reranker=`` to take an existing reranker's config (settings given alongside
    must agree). This component keeps Haystack's ``top_k`` for the documents it returns; the
    pipelines call the same number ``top_n`` (passages kept after reranking).
    """

    def __init__(
        self,
        *,
        device: ComponentDevice | None = None,
        token: Secret | None = Secret.from_env_var(["HF_API_TOKEN", "HF_TOKEN"], strict=False),  # noqa: B008
        top_k: int | None = 10,
        score_threshold: float | None = None,
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
        model_kwargs: dict[str, Any] | None = None,
        reranker: Qwen3Reranker | None = None,
        **settings: Any,
    ) -> None:
        """
        Creates a Qwen3Ranker; the model is loaded by `warm_up` (or the first `run`).

        :param device: The device to load the model on; `None` picks the best available one.
        :param token: Hugging Face token for gated or private models.
        :param top_k: The maximum number of documents to return; `None` returns all of them.
        :param score_threshold: Return only documents scoring at least this (applied before `top_k`).
        :param meta_fields_to_embed: Metadata fields whose values are prepended to the content.
        :param embedding_separator: Separator between those metadata values and the content.
        :param model_kwargs: Loading options: `dtype` (or `torch_dtype`; a `torch.dtype` or a name such
            as `"bfloat16"`), `revision`, `cache_dir`, `local_files_only`.
        :param reranker: An existing `Qwen3Reranker` whose config and weights to share (not
            serialized: `to_dict` records its settings). Model settings given as well must agree.
        :param settings: The core's other settings by name, with the defaults and meanings that
            `qwen3_rerank.RerankerConfig` declares: `model` (Hub id or local directory),
            `instruction` (`None`: the model card's), `max_length` (8192), `batch_tokens`
            (`None`: by device), `long_documents` (`"truncate"` or `"window"`), `window_overlap`.
        :raises TypeError: If a setting's name is unknown.
        :raises ValueError: If `top_k` is not > 0, `model_kwargs` has an unsupported key, or the model
            settings contradict `reranker`.
        """
        _check_top_k(top_k)
        unknown = sorted(set(settings) - set(SETTINGS))
        if unknown:
            raise TypeError(f"Qwen3Ranker got unknown setting(s) {unknown}; expected some of {SETTINGS}.")
        unsupported = sorted(set(model_kwargs or {}) - MODEL_KWARGS)
        if unsupported:
            raise ValueError(
                f"model_kwargs supports only {sorted(MODEL_KWARGS)}; got unsupported keys {unsupported}."
            )
        for name in SETTINGS:
            setattr(self, name, settings.get(name, DEFAULTS[name]))
        self.device = ComponentDevice.resolve_device(device)
        self.model_kwargs = model_kwargs
        self._base = reranker
        base = config_of(reranker)
        if base is not None:
            # Serialised by the settings it stands for; settings given alongside must agree.
            config = base.merge(**self._load_settings(explicit_device=device is not None))
            for name in load_settings(self, SETTINGS):
                setattr(self, name, getattr(config, name))
            self.device = ComponentDevice.from_str(str(config.device))
            self.model_kwargs = {"dtype": config.dtype}
        self.token = token
        self.top_k = top_k
        self.score_threshold = score_threshold
        self.meta_fields_to_embed = meta_fields_to_embed or []
        self.embedding_separator = embedding_separator
        self._reranker: Qwen3Reranker | None = None

    @property
    def reranker(self) -> Qwen3Reranker | None:
        """The scoring core once warmed up; pass it to a LlamaIndex `Qwen3Rerank` to share it."""
        return self._reranker

    def _get_telemetry_data(self) -> dict[str, Any]:
        """
        Data that is sent to Posthog for usage analytics.
        """
        return {"model": self.model}

    def warm_up(self) -> None:
        """
        Loads the model (or takes it from the process-wide registry); does nothing if already loaded.
        """
        if self._reranker is None:
            token = self.token.resolve_value() if self.token else None
            self._reranker = share(self._base, **self._load_settings(), token=token)

    def _load_settings(self, explicit_device: bool = True) -> dict[str, Any]:
        """The init parameters that decide the loaded model, as the core's settings."""
        options = dict(self.model_kwargs or {})
        dtype, torch_dtype = options.pop("dtype", None), options.pop("torch_dtype", None)
        return {
            **load_settings(self, SETTINGS),
            "device": self.device.to_torch_str() if explicit_device else None,
            "dtype": dtype if dtype is not None else torch_dtype,
            **options,
        }

    def close(self) -> None:
        """
        Releases this component's use of the model; a `reranker=` passed in stays usable.
        """
        if self._reranker is not None:
            self._reranker.close()
            self._reranker = None

    def to_dict(self) -> dict[str, Any]:
        """
        Serializes the component to a dictionary.

        :returns:
            Dictionary with serialized data.
        """
        data = default_to_dict(
            self,
            **{name: getattr(self, name) for name in SETTINGS},
            device=self.device.to_dict(),
            token=self.token.to_dict() if self.token else None,
            top_k=self.top_k,
            score_threshold=self.score_threshold,
            meta_fields_to_embed=self.meta_fields_to_embed,
            embedding_separator=self.embedding_separator,
            model_kwargs=dict(self.model_kwargs) if self.model_kwargs is not None else None,
        )
        if data["init_parameters"]["model_kwargs"] is not None:
            serialize_hf_model_kwargs(data["init_parameters"]["model_kwargs"])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Qwen3Ranker:
        """
        Deserializes the component from a dictionary.

        :param data:
            Dictionary to deserialize from.
        :returns:
            Deserialized component.
        """
        init_params = data["init_parameters"]
        if init_params.get("device") is not None:
            init_params["device"] = ComponentDevice.from_dict(init_params["device"])
        deserialize_secrets_inplace(init_params, keys=["token"])
        if init_params.get("model_kwargs") is not None:
            deserialize_hf_model_kwargs(init_params["model_kwargs"])
        return default_from_dict(cls, data)

    @component.output_types(documents=list[Document])
    def run(
        self,
        *,
        query: str,
        documents: list[Document],
        top_k: int | None = None,
        instruction: str | None = None,
        score_threshold: float | None = None,
    ) -> dict[str, list[Document]]:
        """
        Returns the documents sorted by their Qwen3-Reranker score, best first.

        Before ranking, documents are deduplicated by their id, keeping the one with the highest
        incoming score. Documents without content are scored on their embedded metadata alone
        (an empty text if there is none) and a warning names them.

        :param query: The query to rank the documents against.
        :param documents: The documents to rank.
        :param top_k: The maximum number of documents to return; overrides the init value.
        :param instruction: Task instruction; overrides the init value.
        :param score_threshold: Minimum score to return a document; overrides the init value.
        :returns:
            A dictionary with the following keys:
            - `documents`: The documents with their `score` set, sorted from most to least relevant.
        :raises ValueError: If `top_k` is not > 0 or `query` is blank.
        """
        top_k = top_k if top_k is not None else self.top_k
        instruction = instruction if instruction is not None else self.instruction
        score_threshold = score_threshold if score_threshold is not None else self.score_threshold
        _check_top_k(top_k)
        if not documents:
            return {"documents": []}
        self.warm_up()
        assert self._reranker is not None  # set by warm_up
        candidates = _deduplicate(documents)
        ranking = self._reranker.rerank(query, self._texts(candidates), instruction=instruction)
        ranked = [
            dataclasses.replace(candidates[result.index], score=float(result.score)) for result in ranking
        ]
        if score_threshold is not None:
            ranked = [document for document in ranked if document.score >= score_threshold]
        return {"documents": ranked[:top_k]}

    @component.output_types(documents=list[Document])
    async def run_async(
        self,
        *,
        query: str,
        documents: list[Document],
        top_k: int | None = None,
        instruction: str | None = None,
        score_threshold: float | None = None,
    ) -> dict[str, list[Document]]:
        """
        Asynchronously ranks the documents; see `run`.

        The forward passes run in a worker thread, so the event loop keeps serving other requests.
        """
        return await asyncio.to_thread(
            self.run,
            query=query,
            documents=documents,
            top_k=top_k,
            instruction=instruction,
            score_threshold=score_threshold,
        )

    def _texts(self, documents: list[Document]) -> list[str]:
        """What the reranker reads: embedded metadata values, then the content, joined."""
        empty = [document.id for document in documents if document.content is None]
        if empty:
            logger.warning(
                "Qwen3Ranker: {count} documents have no content; they are scored on their embedded "
                "metadata only (ids: {ids}).",
                count=len(empty),
                ids=empty,
            )
        return [
            self.embedding_separator.join(
                [str(document.meta[key]) for key in self.meta_fields_to_embed if document.meta.get(key)]
                + ([document.content] if document.content is not None else [])
            )
            for document in documents
        ]


def _check_top_k(top_k: int | None) -> None:
    if top_k is not None:  # None returns every document
        check_positive("top_k", top_k)


def _deduplicate(documents: list[Document]) -> list[Document]:
    """One document per id, the one with the best incoming score (the first among equals)."""
    best: dict[str, Document] = {}
    for document in documents:
        kept = best.get(document.id)
        if kept is None or _score(document) > _score(kept):
            best[document.id] = document
    return list(best.values())


def _score(document: Document) -> float:
    return document.score if document.score is not None else -inf
