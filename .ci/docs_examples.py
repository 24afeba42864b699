"""Every block of README.md and docs/*.md, run as a reader pastes it, in the environment that
``.ci/check-extras`` built for one extra (issue 27): the page's own ``pip install`` lines add what
it names (``qwen3-rerank`` is the wheel under test), then its blocks run in the order a reader meets
them, in ONE interpreter per page: Python blocks share one namespace, shell blocks run in bash and
their ``export``s reach the later blocks; then the Python blocks run a second time in a fresh
namespace, as a reader who comes back reruns them (an index or a folder from the first run exists).

What a reader's machine has and this one does not is replaced, never skipped: the Hub's reranker ids
become a tiny random Qwen3 (and all-MiniLM-L6-v2 the packaged copy), the default data folder
(``~/.cache/qwen3-rag``) and ``/tmp/`` fresh folders per page, Elasticsearch the stand-in at ES_URL
(``localhost:9200`` and ``docker run ... elasticsearch`` become it); ``qwen3-rerank serve`` and
``uvicorn`` start in the background on a free port (``localhost:8000`` becomes it) until the next
server or the page's end, and ``curl`` fails on an HTTP error status. A block (a shell command) is
skipped only for a reason `why_not` names: a GPU, the Hub or another download, a container engine,
the CI itself, a timed benchmark.

Run time (2026-12-04, two cores shared with five other jobs, load average 9 to 11, each page in an
environment built as check-extras builds it): langchain.md 324 s (42 s of CPU), llamaindex.md 472 s,
haystack.md 625 s, bring-your-own-index.md 898 s, server.md 229 s (four servers started, the curl
blocks against them), README.md 339 s, evaluation.md 60 s, performance.md 0 s; most of it is pip installing
what the pages name. It runs beside the other extras' checks, in check-extras, instead of in pytest,
where the per-block runner took 1,203 s of the suite (issue 24); tests/unit/test_docs_examples.py keeps
the static checks (every page has an environment, the pages name their extras), 26 s.

Usage (stdlib only, run by the environment's own interpreter):
    python .ci/docs_examples.py --wheel WHEEL --tiny DIR --embedder DIR PAGE...
Prints one line per page with its time; exits 1 if a block of any page failed.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Which environment of .ci/check-extras runs each page: the extra the page installs first. A page
# with no Python or shell block (architecture.md, configuration.md) is listed with None.
PAGES: dict[str, str | None] = {
    "README.md": "haystack-pipelines",
    "docs/architecture.md": None,
    "docs/bring-your-own-index.md": "core",
    "docs/configuration.md": None,
    "docs/evaluation.md": "haystack-pipelines",
    "docs/haystack.md": "haystack",
    "docs/langchain.md": "langchain",
    "docs/llamaindex.md": "llamaindex",
    "docs/performance.md": "core",
    "docs/pipelines.md": "haystack-pipelines",
    "docs/server.md": "server",
}
FENCE = re.compile(r"^```(?P<lang>[\w-]*)[ \t]*\n(?P<code>.*?)^```[ \t]*$", re.M | re.S)
SHELLS = {"bash", "sh", "shell", "console"}
HUB_RERANKER = re.compile(r"Qwen/Qwen3-Reranker-(?:0\.6|4|8)B")
HUB_EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"
SERVER_COMMAND = re.compile(r"(?:^|\s)(?:qwen3-rerank serve(?![\w-])|uvicorn\s)")
ES_CONTAINER = re.compile(r"^docker run .*elasticsearch")

# Why a block cannot run here, first match wins (matched on the whole block).
NEEDS = [
    (re.compile(r"[\"']cuda|--device cuda|--profile gpu"), "needs a GPU"),
    (re.compile(r"\bhf download\b|huggingface-cli"), "downloads from the Hugging Face Hub"),
    (
        re.compile(r"\bdocker (?:compose|build)\b"),
        "needs a container engine (tests/stack runs the compose file)",
    ),
    (re.compile(r"\.ci/|\bpytest\b"), "is the CI or the test suite itself"),
    (re.compile(r"\bbenchmarks/"), "a benchmark: minutes, timed on an idle machine"),
    (re.compile(r"shared/data|path/to/|\bscifact\b"), "needs a dataset the reader downloads (the Hub)"),
    (
        re.compile(r"https?://(?!localhost|127\.0\.0\.1)[\w-]+\.[\w.-]+/"),
        "downloads from the internet (the Hub)",
    ),
]


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    lang: str
    code: str

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(page: str) -> list[Block]:
    """The page's Python and shell blocks, in reading order."""
    text = (ROOT / page).read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        if match["lang"] == "python" or match["lang"] in SHELLS:
            line = text.count("\n", 0, match.start()) + 1
            found.append(Block(page, line, "shell" if match["lang"] in SHELLS else "python", match["code"]))
    return found


def why_not(code: str) -> str | None:
    """Why ``code`` (a Python block, or one shell command) cannot run here; None: it runs."""
    return next((reason for pattern, reason in NEEDS if pattern.search(code)), None)


def shell_commands(code: str) -> list[str]:
    """One entry per command: continuation lines joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", code)
    return [
        line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Page:
    """One page's run: its scratch folder, environment, namespace and background server."""

    def __init__(self, page: str, args: argparse.Namespace) -> None:
        self.page = page
        self.args = args
        self.scratch = Path(tempfile.mkdtemp(prefix="docs-"))
        self.port = free_port()
        self.server: subprocess.Popen[bytes] | None = None

    def enter(self) -> None:
        """The variables a reader of this page has set: local models, a private data folder."""
        args = self.args
        os.environ.update(
            {
                "HF_HUB_OFFLINE": "1",
                "RERANKER_MODEL": args.tiny,
                "EMBEDDING_MODEL": args.embedder,
                "QWEN3_RERANK_MODEL": args.tiny,
                "QWEN3_RAG_EMBEDDING_MODEL": args.embedder,
                "QWEN3_RAG_DATA_DIR": str(self.scratch / "data"),
                "QWEN3_RAG_DEVICE": "cpu",
                "QWEN3_SERVER_PORT": str(self.port),
                "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
            }
        )

    def code(self, text: str) -> str:
        text = text.replace("/tmp/", f"{self.scratch}/")
        text = text.replace("~/.cache/qwen3-rag", str(self.scratch / "data"))  # the default data folder
        text = HUB_RERANKER.sub(self.args.tiny, text).replace(HUB_EMBEDDER, self.args.embedder)
        text = text.replace("localhost:8000", f"127.0.0.1:{self.port}")
        if os.environ.get("ES_URL"):
            text = text.replace("http://localhost:9200", os.environ["ES_URL"])
        return text

    def python(self, block: Block, namespace: dict[str, object]) -> None:
        exec(compile(self.code(block.code), block.name, "exec"), namespace)

    def shell(self, block: Block, skipped: list[str]) -> None:
        """Run a shell block; a command that cannot run here is left out and listed in ``skipped``."""
        lines = []
        for command in shell_commands(self.code(block.code)):
            if ES_CONTAINER.search(command):
                continue  # the stand-in at ES_URL already answers in its place
            reason = why_not(command)
            if reason:
                skipped.append(f"{block.name} `{command[:60]}` {reason}")
                continue
            if command.startswith("pip install"):
                command = command.replace(
                    "pip install", f"{shlex.quote(sys.executable)} -m pip install -q", 1
                )
                command = re.sub(r"([\"']?)qwen3-rerank(\[[^\]]*\])?\1", rf"\1{self.args.wheel}\2\1", command)
            if SERVER_COMMAND.search(command):
                self.flush(lines, block)
                lines = []
                self.start_server(re.sub(r"\s+#.*$", "", command), block)
                continue
            if command.startswith("curl "):  # an HTTP error fails the block, as it would a reader
                command = command.replace("curl ", "curl --fail-with-body ", 1)
            lines.append(command)
        self.flush(lines, block)

    def flush(self, lines: list[str], block: Block) -> None:
        """Run ``lines`` as one bash script; its exported variables reach the later blocks."""
        if not lines:
            return
        env_file = self.scratch / "env"
        script = "\n".join(["set -euo pipefail", *lines, f"env -0 > {shlex.quote(str(env_file))}"])
        done = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=900)
        if done.returncode:
            raise RuntimeError(f"exit status {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        exported = dict(item.split("=", 1) for item in env_file.read_text().split("\0") if "=" in item)
        os.environ.clear()
        os.environ.update(exported)

    def start_server(self, command: str, block: Block) -> None:
        """A server command runs in the background (a reader's other terminal) until replaced."""
        self.stop_server()
        if "uvicorn " in command:
            command += f" --port {self.port}"
        log = (self.scratch / "server.log").open("wb")
        self.server = subprocess.Popen(
            ["bash", "-c", command], cwd=ROOT, stdout=log, stderr=log, start_new_session=True
        )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise RuntimeError(f"`{command}` exited: {(self.scratch / 'server.log').read_text()[-3000:]}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"`{command}` did not listen on port {self.port} within 300 s")

    def stop_server(self) -> None:
        if self.server is not None:  # its own session: bash and the server it started
            os.killpg(self.server.pid, signal.SIGTERM)
            try:
                self.server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.server.pid, signal.SIGKILL)
            self.server = None

    def run(self) -> tuple[int, list[str]]:
        """Run the page once, then its Python blocks again; returns (blocks run, what was skipped)."""
        ran, skipped = 0, []
        self.enter()
        try:
            for rerun in (False, True):
                namespace: dict[str, object] = {"__name__": "__doc_example__"}
                for block in blocks(self.page):
                    if rerun and block.lang == "shell":
                        continue
                    reason = why_not(block.code) if block.lang == "python" else None
                    if reason:
                        skipped += [] if rerun else [f"{block.name} {reason}"]
                        continue
                    try:
                        if block.lang == "python":
                            self.python(block, namespace)
                        else:
                            self.shell(block, skipped)
                    except BaseException as error:
                        when = "on its second run" if rerun else "as pasted"
                        detail = "".join(traceback.format_exception(error)[-12:])
                        raise PageFailed(f"{block.name} fails {when}:\n{detail}") from error
                    ran += 1
        finally:
            self.stop_server()
        return ran, skipped


class PageFailed(Exception):
    pass


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--wheel", required=True, help="the project's wheel, installed for `pip install qwen3-rerank`"
    )
    parser.add_argument("--tiny", required=True, help="a tiny random Qwen3 reranker directory")
    parser.add_argument("--embedder", required=True, help="the all-MiniLM-L6-v2 directory")
    parser.add_argument("pages", nargs="+", help="pages relative to the repository root")
    args = parser.parse_args()
    failed = 0
    original = dict(os.environ)
    for page in args.pages:
        os.environ.clear()
        os.environ.update(original)
        started = time.monotonic()
        try:
            ran, skipped = Page(page, args).run()
        except PageFailed as error:
            failed += 1
            print(
                f"docs-examples: [{page}] FAILED in {time.monotonic() - started:.0f} s: {error}", flush=True
            )
            continue
        print(
            f"docs-examples: [{page}] {ran} blocks run (Python twice) in {time.monotonic() - started:.0f} s"
            + "".join(f"\n  skipped {reason}" for reason in skipped),
            flush=True,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
