"""Documents per second: the model card's code vs sentence-transformers vs qwen3-rerank.

Builds a model of Qwen3-Reranker-0.6B's exact shape with random weights (same compute as the real
one), saves it, and scores the same query and documents three ways in one run, printing
documents/second, the speed-up ratios and the largest score difference against the model card.

    python benchmarks/rerank_speed.py                 # the figures in docs/performance.md (28 layers)
    python benchmarks/rerank_speed.py --layers 4      # quick iterations
    python benchmarks/rerank_speed.py --device cuda --dtype bfloat16 --documents 100

The documents are real technical prose (the Python reference's help topics, shipped with CPython),
cut into passages whose lengths spread evenly over 200-600 tokens.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qwen3_rerank import Qwen3Reranker  # noqa: E402
from qwen3_rerank.batching import common_prefix_length  # noqa: E402
from qwen3_rerank.prompt import DEFAULT_INSTRUCTION, PREFIX, SUFFIX  # noqa: E402
from qwen3_rerank.testing import RERANKER_0_6B_SHAPE, save_random_qwen3  # noqa: E402
from tests.model_card_reference import ModelCardReranker  # noqa: E402

QUERY = "How does Python decide which scope a name refers to inside a nested function?"
# sentence-transformers renders (query, document) pairs through the tokenizer's chat template;
# this one reproduces the model card's prompt so that all three score the same tokens.
ST_CHAT_TEMPLATE = (
    '{%- set query = messages | selectattr("role", "eq", "query") | map(attribute="content") | first -%}'
    '{%- set document = messages | selectattr("role", "eq", "document")'
    ' | map(attribute="content") | first -%}'
    "{%- if query is not string %}{% set query = query[0].text %}{% endif -%}"
    "{%- if document is not string %}{% set document = document[0].text %}{% endif -%}"
    + PREFIX.replace("{", "{{ '{' }}")
    + "<Instruct>: "
    + DEFAULT_INSTRUCTION
    + "\n<Query>: {{ query }}\n<Document>: {{ document }}"
    + SUFFIX.removesuffix("\n\n")
    + "{{ '\\n\\n' }}"  # Jinja drops a template's final newline; an expression keeps it
)


def passages(tokenizer, count: int, seed: int = 0) -> list[str]:
    """``count`` passages of CPython's help topics, lengths spread evenly over 200-600 tokens."""
    from pydoc_data.topics import topics

    paragraphs = [p.strip() for text in topics.values() for p in text.split("\n\n") if len(p.strip()) > 80]
    random.Random(seed).shuffle(paragraphs)
    targets = [200 + round(400 * i / max(count - 1, 1)) for i in range(count)]
    result, cursor = [], 0
    for target in targets:
        words: list[str] = []
        while len(tokenizer.encode(" ".join(words))) < target:
            words.extend(paragraphs[cursor % len(paragraphs)].split())
            cursor += 1
        ids = tokenizer.encode(" ".join(words))[:target]
        result.append(tokenizer.decode(ids))
    random.Random(seed + 1).shuffle(result)
    return result


def layer_parameters(shape: dict[str, int]) -> int:
    """Weights of one decoder layer's projections (norms are negligible)."""
    hidden, head_dim = shape["hidden_size"], shape["head_dim"]
    attention = 2 * hidden * shape["attention_heads"] * head_dim + 2 * hidden * shape["kv_heads"] * head_dim
    return attention + 3 * hidden * shape["intermediate_size"]


def timed(
    name: str, score: Callable[[], list[float]], documents: int, repeat: int
) -> tuple[list[float], float]:
    """Scores and the best documents/second of ``repeat`` runs (the least disturbed one)."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        scores = score()
        best = min(best, time.perf_counter() - start)
    print(f"  {name:<26} {documents / best:8.3f} docs/s  (best of {repeat}: {best:.1f} s)", flush=True)
    return scores, documents / best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--layers", type=int, default=RERANKER_0_6B_SHAPE["layers"])
    parser.add_argument("--documents", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--methods", default="reference,sentence-transformers,core")
    parser.add_argument("--batch-tokens", type=int, default=None)
    parser.add_argument("--model-dir", type=Path, default=ROOT / "benchmarks" / ".models")
    parser.add_argument("--repeat", type=int, default=1, help="time each method this often, keep the best")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    methods = args.methods.split(",")

    shape = {**RERANKER_0_6B_SHAPE, "layers": args.layers}
    model_dir = args.model_dir / f"qwen3-reranker-0.6b-shape-{args.layers}-layers"
    if not (model_dir / "config.json").exists():
        print(f"Saving a random model of Qwen3-Reranker-0.6B's shape ({args.layers} layers) to {model_dir}")
        save_random_qwen3(model_dir, **shape)
    # sentence-transformers picks its input format when loading, from the saved chat template.
    (model_dir / "chat_template.jinja").write_text(ST_CHAT_TEMPLATE)
    dtype = getattr(torch, args.dtype)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, {args.dtype}, "
        f"{args.layers} layers"
    )

    core = Qwen3Reranker(str(model_dir), device=args.device, dtype=args.dtype, batch_tokens=args.batch_tokens)
    documents = passages(core.loaded_model.tokenizer, args.documents)
    encoded = core._encoder.encode([(QUERY, d) for d in documents])
    lengths = [len(ids) for ids in encoded]
    head = common_prefix_length(encoded)
    print(
        f"{len(documents)} documents, prompt lengths {min(lengths)}-{max(lengths)} tokens, "
        f"mean {sum(lengths) / len(lengths):.0f}; shared head {head} tokens"
    )
    core.score(QUERY, documents[:1])  # warm-up

    results: dict[str, tuple[list[float], float]] = {}
    if "reference" in methods:
        reference = ModelCardReranker(str(model_dir))
        reference.model.to(device=args.device, dtype=dtype)
        reference.score(QUERY, documents[:1])
        results["reference"] = timed(
            "model card (a)", lambda: reference.score(QUERY, documents), len(documents), args.repeat
        )
        del reference
    if "sentence-transformers" in methods:
        from sentence_transformers import CrossEncoder

        cross_encoder = CrossEncoder(
            str(model_dir), device=args.device, model_kwargs={"dtype": dtype}, max_length=8192
        )
        pairs = [(QUERY, document) for document in documents]
        cross_encoder.predict(pairs[:1])
        results["sentence-transformers"] = timed(
            "sentence-transformers (b)",
            lambda: cross_encoder.predict(pairs, batch_size=len(pairs)).tolist(),
            len(documents),
            args.repeat,
        )
        del cross_encoder
    if "core" in methods:
        results["core"] = timed(
            "qwen3-rerank (c)", lambda: core.score(QUERY, documents), len(documents), args.repeat
        )

    report = {name: {"docs_per_s": speed} for name, (_, speed) in results.items()}
    if "core" in results:
        for baseline in ("reference", "sentence-transformers"):
            if baseline in results:
                ratio = results["core"][1] / results[baseline][1]
                report["core"][f"speedup_vs_{baseline}"] = ratio
                print(f"  core / {baseline}: {ratio:.2f}x")
        # 2 FLOPs per weight per token, for the tokens after the shared head (attention excluded).
        flops = 2 * layer_parameters(shape) * shape["layers"] * (sum(lengths) - head * len(lengths))
        report["core"]["matmul_gflop_per_s"] = flops * results["core"][1] / len(documents) / 1e9
        print(f"  core matrix-multiply throughput: {report['core']['matmul_gflop_per_s']:.0f} GFLOP/s")
    if "reference" in results:
        for name, (scores, _) in results.items():
            difference = max(abs(a - b) for a, b in zip(scores, results["reference"][0], strict=True))
            report[name]["max_abs_diff_vs_reference"] = difference
            print(f"  max |score - reference| for {name}: {difference:.2e}")
    if args.json:
        args.json.write_text(
            json.dumps({"args": vars(args) | {"model_dir": str(model_dir)}, **report}, indent=2, default=str)
        )


if __name__ == "__main__":
    main()
