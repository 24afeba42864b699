"""Indexing the sample corpus on a fresh stack's first start.

``docker compose up`` should end in a page that can answer questions, with no manual step; but a
restart must not re-embed everything. So the corpus is indexed only when the store is empty, in
the background, with progress on ``/readyz``.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from .state import ServerState

logger = logging.getLogger(__name__)

# Elasticsearch reports healthy slightly before an index can be created; a few retries cover it.
ATTEMPTS = 5
RETRY_DELAY_S = 3.0


async def index_sample_corpus(state: ServerState, folder: Path) -> None:
    """Index ``folder`` (recursively) into the pipeline's store unless the store holds chunks."""
    rag = state.rag
    if rag is None:
        return
    state.corpus = "indexing"
    for attempt in range(1, ATTEMPTS + 1):
        try:
            if await asyncio.to_thread(rag.document_count) > 0:
                state.corpus = "already indexed"
                return
            report = await asyncio.to_thread(rag.index_paths, [folder])
        except Exception as error:
            logger.warning("Indexing %s failed (attempt %d of %d): %s", folder, attempt, ATTEMPTS, error)
            state.corpus_error = f"{type(error).__name__}: {error}"
            if attempt < ATTEMPTS:
                await asyncio.sleep(RETRY_DELAY_S)
            continue
        logger.info("Indexed the sample corpus %s: %s", folder, report)
        state.corpus, state.corpus_error = "indexed", None
        return
    state.corpus = "failed"
