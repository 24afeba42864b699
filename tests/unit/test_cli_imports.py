"""The command line answers ``--help``, ``--version``, usage errors and missing files without
importing torch, transformers or a framework: they are what makes a start take seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HEAVY = ("torch", "transformers", "haystack", "llama_index.core", "sentence_transformers", "fastapi")
CASES = {
    "version": ["--version"],
    "help": ["--help"],
    "rerank help": ["rerank", "--help"],
    "ask help": ["ask", "--help"],
    "serve help": ["serve", "--help"],
    "usage error": ["rerank", "--no-such-option"],
    "bad choice": ["rerank", "q", "--dtype", "int8"],
    "missing documents": ["rerank", "q", "/no/such/docs.txt"],
    "missing path to index": ["index", "/no/such/folder"],
    "missing dataset": ["eval", "/no/such/dataset"],
    "malformed --set": ["ask", "q", "--set", "top_n"],
}
# Runs each case in one fresh interpreter, through the console script's own entry point.
PROBE = """
import json, sys
from qwen3_rerank.cli import main
heavy, cases, found = sys.argv[1].split(","), json.loads(sys.argv[2]), {}
for name, arguments in cases.items():
    sys.argv = ["qwen3-rerank", *arguments]
    try:
        main()
    except SystemExit as exit:
        code = exit.code
    found[name] = [code, [module for module in heavy if module in sys.modules]]
print(json.dumps(found), file=sys.__stdout__)
"""


def test_quick_answers_import_no_model_or_framework_code(tmp_path: Path) -> None:
    environment = os.environ | {"QWEN3_RAG_DATA_DIR": str(tmp_path)}
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(HEAVY), json.dumps(CASES)],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    found = json.loads(completed.stdout.splitlines()[-1])
    assert {name: exit_code for name, (exit_code, _) in found.items()} == {
        name: 0 if "help" in name or name == "version" else (2 if "error" in name or "choice" in name else 1)
        for name in CASES
    }
    assert {name: modules for name, (_, modules) in found.items()} == {name: [] for name in CASES}
