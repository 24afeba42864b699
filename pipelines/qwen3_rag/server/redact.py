"""Removing credentials from text before a person or a client sees it.

Errors from the document store and the pipeline quote URLs (``http://user:password@host:9200``),
and settings carry API keys and tokens. Every place that renders such text for the outside world
(error bodies, ``/readyz`` and so the page's header line, log records) passes it through
`redact`, so no secret leaves the process however the error was worded.

Example:
    >>> redact("cannot reach http://elastic:hunter2@es:9200/_search?api_key=abc")
    'cannot reach http://***@es:9200/_search?api_key=***'
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"

# scheme://userinfo@ : the whole userinfo goes, since a lone user part is often a token.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@'\"<>]+@")
# key=value, key: value, "key": "value" for names that hold secrets.
_SECRET_NAMES = r"(?:[a-z0-9_-]*(?:password|passwd|secret|token|api[_-]?key|apikey|credentials?))"
_KEY_VALUE = re.compile(
    rf"(?P<key>[\"']?\b{_SECRET_NAMES}[\"']?\s*[:=]\s*)(?P<value>\"[^\"]*\"|'[^']*'|[^\"'\s,&;}})\]]+)",
    re.IGNORECASE,
)
# Authorization header values: "Bearer abc", "Basic dXNlcjpwdw==", "ApiKey abc".
_AUTH_SCHEME = re.compile(r"\b(?P<scheme>Bearer|Basic|ApiKey)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
# Environment variables whose values are secrets, whatever text they end up in.
_SECRET_ENV = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|APIKEY|CREDENTIAL", re.IGNORECASE)
_MIN_SECRET_CHARS = 4  # shorter values would mask ordinary words


def secret_values(environ: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> list[str]:
    """Values that must never be shown: secret-named environment variables plus ``extra``."""
    environ = os.environ if environ is None else environ
    values = [value for name, value in environ.items() if _SECRET_ENV.search(name)]
    values.extend(extra)
    # Longest first, so a secret that contains another is masked whole.
    return sorted({v for v in values if len(v) >= _MIN_SECRET_CHARS}, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` with URL credentials, secret-named parameters, Authorization values and known
    secret values (``secrets``; default: secret-named environment variables) replaced by ``***``."""
    for value in secret_values() if secrets is None else secrets:
        text = text.replace(value, MASK)
    text = _URL_USERINFO.sub(rf"\g<scheme>{MASK}@", text)
    text = _KEY_VALUE.sub(rf"\g<key>{MASK}", text)
    return _AUTH_SCHEME.sub(rf"\g<scheme> {MASK}", text)


def redact_json(value: Any, secrets: Iterable[str] | None = None) -> Any:
    """`redact` applied to every string inside a JSON-like value (dicts, lists, strings)."""
    secrets = secret_values() if secrets is None else list(secrets)
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, Mapping):
        return {key: redact_json(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_json(item, secrets) for item in value]
    return value
