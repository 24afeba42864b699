"""The embedded store under writers that run at once and after damage (issue 26): one writer at
a time across processes, no acknowledged write lost, nothing cleaned that another process still
uses; a damaged generation refused by name, never saved on.

The writers are separate processes (the process boundary is what the lock is for), each writing
one source per write and printing it once the write returned: a printed source is acknowledged
and must be in the store afterwards, whatever ran at the same time or was killed."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qwen3_rag.records import Chunk
from qwen3_rag.stores import StoreBusy, StoreError
from qwen3_rag.stores.locking import HOLDER_FILE, WriteLock
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


@pytest.mark.parametrize("timeout_s", [-1, float("nan")])
def test_a_write_lock_timeout_below_zero_is_refused_by_name(tmp_path: Path, timeout_s: float) -> None:
    with pytest.raises(ValueError, match="write lock's timeout must be >= 0 seconds"):
        WriteLock(tmp_path, timeout_s=timeout_s)


def test_an_unreadable_holder_file_still_gives_a_refusal(tmp_path: Path) -> None:
    # The side file is a courtesy: a writer that died while writing it must not break the refusal.
    first, second = WriteLock(tmp_path, timeout_s=0), WriteLock(tmp_path, timeout_s=0)
    first.acquire()
    try:
        (tmp_path / HOLDER_FILE).write_text('{"pid": 12', encoding="utf-8")
        with pytest.raises(StoreBusy, match="being written by another process; one writer at a time"):
            second.acquire()
    finally:
        first.release()
    second.acquire()
    second.release()


# --- damage: each file of a generation truncated, zeroed or deleted ---------------------------------

DAMAGES = {
    "truncated": lambda file: os.truncate(file, file.stat().st_size // 2),
    "zeroed": lambda file: file.write_bytes(b"\0" * file.stat().st_size),
    "deleted": lambda file: file.unlink(),
}
GENERATION_FILES = sorted(
    [
        "manifest.json",
        "ids.npy",
        "positions.npy",
        "texts.bin",
        "texts.offsets.npy",
        "metas.bin",
        "metas.offsets.npy",
        "source_codes.npy",
        "sources.json",
        "vectors.npy",
        "hnsw.usearch",
        *(f"bm25/{name}" for name in ("params.index.json", "vocab.index.json")),
        *(f"bm25/{name}.csc.index.npy" for name in ("data", "indices", "indptr")),
    ]
)
PASSAGES = [Chunk.create(f"passage {i} about volcano number {i}", f"s{i}.md", 0) for i in range(7)]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of 7 passages with an HNSW index, written once and copied by each test."""
    directory = tmp_path_factory.mktemp("template")
    MemoryStore(directory, "store", ann_threshold=1).write(PASSAGES, [[1.0, float(i), 0.0] for i in range(7)])
    return directory / "store"


def damaged_store(template: Path, tmp_path: Path, name: str, damage: str) -> tuple[MemoryStore, str]:
    """A copy of ``template`` whose current generation has ``name`` damaged; and CURRENT's text."""
    shutil.copytree(template, tmp_path / "store")
    current = (tmp_path / "store" / "CURRENT").read_text()
    file = tmp_path / "store" / current / name
    assert file.stat().st_size > 1, "a file that damage changes"
    DAMAGES[damage](file)
    return MemoryStore(tmp_path, "store", ann_threshold=1), current


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_file_is_refused_by_name_and_never_the_base_of_a_new_generation(
    template: Path, tmp_path: Path, damage: str
) -> None:
    for name in GENERATION_FILES:  # each file in turn (one test: the set-up is the slow part)
        store, current = damaged_store(template, tmp_path / name.replace("/", "-"), name, damage)
        with pytest.raises(StoreError, match=re.escape(name)) as checked:
            store.verify()  # `qwen3-rerank check`
        assert str(store.directory) in str(checked.value), "the store is named"
        assert "qwen3-rerank" in str(checked.value), "and what to run"
        with pytest.raises(StoreError, match=re.escape(name)):
            store.write([Chunk.create("new passage", "new.md", 0)], [[0.0, 1.0, 0.0]])  # `index`
        assert (store.directory / "CURRENT").read_text() == current, f"saved on a damaged {name}"
        if damage != "zeroed":  # sizes are checked on opening: searches refuse it too
            with pytest.raises(StoreError, match=re.escape(name)):
                MemoryStore(store.directory.parent, "store", ann_threshold=1).count()


def test_a_store_written_before_checksums_opens_and_is_checked_for_consistency(
    template: Path, tmp_path: Path
) -> None:
    store, current = damaged_store(template, tmp_path, "sources.json", "zeroed")
    generation = tmp_path / "store" / current
    (generation / "sources.json").write_text(json.dumps([f"s{i}.md" for i in range(7)]))
    manifest = json.loads((generation / "manifest.json").read_text())
    del manifest["files"]  # as an older version wrote it
    (generation / "manifest.json").write_text(json.dumps(manifest))
    assert store.count() == 7 and store.verify().checksums is False
    store.write([Chunk.create("new passage", "new.md", 0)], [[0.0, 1.0, 0.0]])
    assert store.verify().checksums is True, "the next write records them"
    # Without checksums a truncated texts.bin is still found (the 3 of 7 passages saved):
    generation = tmp_path / "store" / (tmp_path / "store" / "CURRENT").read_text()
    manifest = json.loads((generation / "manifest.json").read_text())
    del manifest["files"]
    (generation / "manifest.json").write_text(json.dumps(manifest))
    os.truncate(generation / "texts.bin", (generation / "texts.bin").stat().st_size // 2)
    with pytest.raises(StoreError, match=r"texts\.bin is \d+ bytes, its offsets end at \d+"):
        MemoryStore(tmp_path, "store").write([Chunk.create("more", "more.md", 0)], [[0.0, 0.0, 1.0]])


def test_qwen3_rerank_check_says_whole_or_names_the_damaged_file(template: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from qwen3_rerank.cli import full_app

    damaged_store(template, tmp_path, "vectors.npy", "zeroed")
    arguments = ["check", "--data-dir", str(tmp_path), "--index", "store"]
    damaged = CliRunner().invoke(full_app(), arguments, env={"COLUMNS": "300"})
    assert damaged.exit_code == 1
    assert "vectors.npy does not match its SHA-256 checksum" in damaged.output
    MemoryStore(tmp_path, "fine").write(PASSAGES[:2], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    arguments[-1] = "fine"
    whole = CliRunner().invoke(full_app(), arguments, env={"COLUMNS": "300"})
    assert whole.exit_code == 0, whole.output
    assert "is whole: 2 chunks" in whole.output and "checksums match" in whole.output
