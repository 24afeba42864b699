"""Package exports loaded on first use, so that ``import qwen3_rerank`` (and the CLI's ``--help``)
costs no torch or framework import until a name that needs one is touched (PEP 562)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str], public: Iterable[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__``: ``exports`` maps each name to the submodule
    (relative to ``package``) that defines it."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name], package), name)

    names = sorted(public)

    def __dir__() -> list[str]:
        return names

    return __getattr__, __dir__
