"""``GET /healthz`` (the process answers) and ``GET /readyz`` (it can do its job).

Docker's health check and load balancers use ``/healthz`` to decide whether to restart the
container, so it never touches a dependency; ``/readyz`` decides whether to send traffic, so it
checks the model, the batcher and the document store. The store ping runs on a thread of its
own with a short deadline (``QWEN3_SERVER_READINESS_TIMEOUT_S``), so ``/readyz`` answers in well
under a second even while Elasticsearch hangs and ``/v1/ask`` calls wait on it. Everything it
shows passes through `redact`: the page prints this body in its header line.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from qwen3_rag.stores.base import IndexUnavailable

from .redact import redact_json
from .state import ServerState, get_state

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: model loaded, batcher running, document store reachable")
async def readyz(state: Annotated[ServerState, Depends(get_state)]) -> JSONResponse:
    """200 when every part that is switched on works, else 503 with the failing parts named."""
    checks: dict[str, Any] = {
        "model": state.reranker.model_id,
        "device": str(state.reranker.device),
        "batcher": "running" if state.batcher.running else "stopped",
        "rag": await _rag_check(state),
        "corpus": state.corpus if state.corpus_error is None else f"failed: {state.corpus_error}",
        "batches": dataclasses.asdict(state.batcher.stats),
    }
    # With rag="auto" a pipeline that did not start is a chosen degradation, not a failure.
    rag_ok = checks["rag"] in ("ok", "off") or (state.settings.rag == "auto" and state.rag is None)
    ready = state.batcher.running and rag_ok
    body = {"status": "ready" if ready else "not ready", **checks}
    return JSONResponse(redact_json(body, state.secrets), status_code=200 if ready else 503)


async def _rag_check(state: ServerState) -> str:
    if state.rag is None:
        return "off" if state.settings.rag == "off" else f"unavailable: {state.rag_error}"
    try:
        await state.readiness.check(state.rag.ping)
    except IndexUnavailable as error:  # reachable, but its index cannot be searched: say why
        return f"index unavailable: {error.reason}"
    except Exception as error:  # any failure means "not ready", with the reason shown
        return f"store unreachable: {error or type(error).__name__}"
    return "ok"
