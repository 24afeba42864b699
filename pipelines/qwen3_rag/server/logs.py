"""Log records as the operator should see them: secrets masked, the request id attached.

A `logging.Filter` on the handlers (not on one logger) sees every record that is written,
whichever library logged it: uvicorn's access and error lines, the Elasticsearch client, this
package. It rewrites the message (and a traceback's text) through `redact`, and appends
``[request_id=...]`` to records written while a request is served, so any log format shows it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from .redact import redact
from .request_id import current_request_id

UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


class RedactingFilter(logging.Filter):
    """Masks ``secrets`` (and credential patterns) in each record; adds ``record.request_id``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = list(secrets)
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "qwen3_redacted", False):  # several handlers may share one record
            return True
        message = redact(record.getMessage(), self.secrets)
        request_id = current_request_id()
        record.request_id = request_id or "-"
        if request_id is not None:
            message = f"{message} [request_id={request_id}]"
        record.msg, record.args = message, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(self._formatter.formatException(record.exc_info), self.secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        record.qwen3_redacted = True
        return True


def install_log_filter(secrets: Iterable[str]) -> RedactingFilter:
    """Attach one `RedactingFilter` to the root and uvicorn handlers (replacing an earlier one)."""
    log_filter = RedactingFilter(secrets)
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in UVICORN_LOGGERS)]
    for handler in {handler for logger in loggers for handler in logger.handlers}:
        for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(old)
        handler.addFilter(log_filter)
    return log_filter


def remove_log_filter(log_filter: RedactingFilter) -> None:
    """Detach ``log_filter`` from every handler it was attached to (at shutdown)."""
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in UVICORN_LOGGERS)]
    for handler in {handler for logger in loggers for handler in logger.handlers}:
        handler.removeFilter(log_filter)
