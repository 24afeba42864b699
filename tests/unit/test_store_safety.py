"""The embedded store under writers that run at once (issue 26): one writer at a time across
processes, no acknowledged write lost, nothing cleaned that another process still uses.

The writers are separate processes (the process boundary is what the lock is for), each writing
one source per write and printing it once the write returned: a printed source is acknowledged
and must be in the store afterwards, whatever ran at the same time or was killed."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qwen3_rag.records import Chunk
from qwen3_rag.stores import StoreBusy
from qwen3_rag.stores.memory import MemoryStore

WRITER = """
import sys
from pathlib import Path
from qwen3_rag.records import Chunk
from qwen3_rag.stores.memory import MemoryStore

directory, name, count, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
store = MemoryStore(Path(directory), "race", write_lock_timeout_s=120)
for i in range(count):
    source = f"{name}-{i}.md"
    chunks = [Chunk.create(f"{name} passage {i} part {j}", source, j) for j in range(size)]
    store.write(chunks, [[1.0, float(i), float(j)] for j in range(size)])
    print(source, flush=True)
"""


def writer(directory: Path, name: str, count: int, size: int = 1) -> subprocess.Popen[str]:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(directory), name, str(count), str(size)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )


def sources(store: MemoryStore) -> set[str]:
    return {hit.source for hit in store.knn([1.0, 0.0, 0.0], top_k=100_000)}


def test_writers_in_several_processes_at_once_lose_no_acknowledged_write(tmp_path: Path) -> None:
    # The interleaving differs from round to round; a lost write in any round fails the test.
    store = MemoryStore(tmp_path, "race", write_lock_timeout_s=120)
    acknowledged: set[str] = set()
    deadline = time.monotonic() + 60
    for round_number in range(3):
        children = [writer(tmp_path, f"r{round_number}p{child}", 15) for child in range(2)]
        for i in range(15):  # this process writes meanwhile, as the server would
            source = f"r{round_number}main-{i}.md"
            store.write([Chunk.create(f"main passage {i}", source, 0)], [[1.0, 0.0, float(i)]])
            acknowledged.add(source)
        for child in children:
            out, err = child.communicate(timeout=120)
            assert child.returncode == 0, err
            acknowledged.update(out.split())
        assert acknowledged <= sources(MemoryStore(tmp_path, "race")), "an acknowledged write was lost"
        if time.monotonic() > deadline:
            break
    assert len(acknowledged) >= 45
    assert len(list((tmp_path / "race").glob("gen-*"))) <= 2, "old generations are cleaned"


def test_a_writer_killed_mid_write_loses_nothing_acknowledged_and_leaves_the_store_writable(
    tmp_path: Path,
) -> None:
    for attempt in range(3):
        child = writer(tmp_path, f"k{attempt}", 1000, size=200)
        assert child.stdout is not None
        acknowledged = {child.stdout.readline().strip() for _ in range(2 + attempt)}
        time.sleep(0.01 * attempt)  # not a wait on a condition: where in the next write it dies
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        acknowledged.discard("")
        after = MemoryStore(tmp_path, "race", write_lock_timeout_s=5)
        after.verify()  # the committed generation is whole
        assert acknowledged <= sources(after)
        after.write([Chunk.create(f"after {attempt}", f"after-{attempt}.md", 0)], [[1.0, 0.0, 0.0]])
        assert f"after-{attempt}.md" in sources(after), "the lock died with its holder"
        assert not list((tmp_path / "race").glob("partial-*")), "the dead writer's partial generation went"


def test_a_second_writer_waits_then_is_refused_naming_the_first(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = MemoryStore(tmp_path, "busy")
    second = MemoryStore(tmp_path, "busy", write_lock_timeout_s=0.2)
    chunk = Chunk.create("text", "a.md", 0)
    with first.bulk(), caplog.at_level(logging.WARNING), pytest.raises(StoreBusy) as refused:
        first.write([chunk], [[1.0, 0.0, 0.0]])
        second.write([Chunk.create("other", "b.md", 0)], [[0.0, 1.0, 0.0]])
    assert f"pid {os.getpid()}" in str(refused.value)
    assert "QWEN3_RAG_WRITE_LOCK_TIMEOUT_S" in str(refused.value)
    assert any("waiting up to 0.2 s" in record.getMessage() for record in caplog.records)
    second.write([Chunk.create("other", "b.md", 0)], [[0.0, 1.0, 0.0]])  # free once the first ended
    assert sources(second) == {"a.md", "b.md"}
