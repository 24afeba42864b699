"""Log records as the operator should see them: secrets masked, the request id attached.

A `logging.Filter` on the handlers (not on one logger) sees every record that is written,
whichever library logged it: uvicorn's access and error lines, the Elasticsearch client, this
package. It passes the message and each argument through `redact` (keeping the arguments'
shape, which uvicorn's access formatter unpacks), sets ``record.request_id``, and appends
``[request_id=...]`` to records written while a request is served; `uvicorn_log_config` adds the
id to uvicorn's access line too.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable
from typing import Any

from .redact import redact
from .request_id import current_request_id

UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
ACCESS_LOGGER = "uvicorn.access"


class RedactingFilter(logging.Filter):
    """Masks ``secrets`` (and credential patterns) in each record; adds ``record.request_id``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = list(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "qwen3_redacted", False):  # several handlers may share one record
            return True
        record.qwen3_redacted = True
        request_id = current_request_id()
        record.request_id = request_id or "-"
        if isinstance(record.msg, str):
            record.msg = redact(record.msg, self.secrets)
            if request_id is not None and record.name != ACCESS_LOGGER:
                record.msg = f"{record.msg} [request_id={request_id}]"
        if isinstance(record.args, tuple):
            record.args = tuple(self._redact_value(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: self._redact_value(value) for key, value in record.args.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info), self.secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        return True

    def _redact_value(self, value: Any) -> Any:
        """``value`` unchanged unless its text holds a secret (then the redacted text)."""
        if value is None or isinstance(value, bool | int | float):
            return value
        text = str(value)
        redacted = redact(text, self.secrets)
        return value if redacted == text else redacted


def _handlers() -> set[logging.Handler]:
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in UVICORN_LOGGERS)]
    handlers = {handler for logger in loggers for handler in logger.handlers}
    if logging.lastResort is not None:  # what writes warnings when the root has no handler
        handlers.add(logging.lastResort)
    return handlers


def install_log_filter(secrets: Iterable[str]) -> list[logging.Handler]:
    """Make every root and uvicorn handler redact ``secrets``; returns the handlers newly given
    a filter, for `remove_log_filter` (a filter already there learns the secrets and stays)."""
    secrets = list(secrets)
    added = []
    for handler in _handlers():
        existing = [f for f in handler.filters if isinstance(f, RedactingFilter)]
        for log_filter in existing:
            log_filter.secrets = sorted({*log_filter.secrets, *secrets}, key=len, reverse=True)
        if not existing:
            handler.addFilter(RedactingFilter(secrets))
            added.append(handler)
    return added


def remove_log_filter(handlers: Iterable[logging.Handler]) -> None:
    """Detach the filters `install_log_filter` added to ``handlers`` (at shutdown)."""
    for handler in handlers:
        for log_filter in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(log_filter)


def uvicorn_log_config(secrets: Iterable[str]) -> dict[str, Any]:
    """uvicorn's logging configuration with redaction on every handler, the request id on the
    access line, and the root logger (this package, the Elasticsearch client) written too."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact": {"()": RedactingFilter, "secrets": list(secrets)}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact"]
    access = config["formatters"]["access"]
    access["fmt"] = f"{access['fmt']} [request_id=%(request_id)s]"
    # Warnings from any library, and this project's own info lines, not every client's chatter.
    config["root"] = {"handlers": ["default"], "level": "WARNING"}
    for name in ("qwen3_rag", "qwen3_rerank"):
        config["loggers"][name] = {"level": "INFO"}
    return config
