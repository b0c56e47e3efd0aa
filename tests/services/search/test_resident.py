"""search.memory_lock: the tantivy index's hot files are mapped and mlock()ed (the kernel
cannot page them out), follow commits and merges, are released on close, and a memlock limit
that refuses them degrades to the page cache with one warning, never to an error."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import pytest

from lgsp.config import ConfigError, load_settings
from services.search.adapters.generations import Generations
from services.search.index import Caller, IndexedDocument, SearchQuery
from services.search.index.resident import LEVELS, ResidentFiles
from services.search.index.tantivy_index import TantivyIndex

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mlock is Linux's")

A = "000.00.02.H27"


def docs(start: int, n: int) -> list[IndexedDocument]:
    return [
        IndexedDocument(
            f"d{i}",
            f"{i}/CV-SNV",
            f"Công văn số {i} về cải cách hành chính",
            body_text="Nội dung " * 200,
            agency_code=A,
            version=1,
        )
        for i in range(start, start + n)
    ]


def vm_locked_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmLck:"):
            return int(line.split()[1])
    raise AssertionError("no VmLck in /proc/self/status")


def committed_files(root: Path, kinds: frozenset[str]) -> set[Path]:
    out = set()
    for shard in sorted(root.glob("shard-*")):
        meta = json.loads((shard / "meta.json").read_text())
        for seg in meta["segments"]:
            sid = seg["segment_id"].replace("-", "")
            out |= {shard / f"{sid}.{k}" for k in kinds if (shard / f"{sid}.{k}").stat().st_size}
    return out


def test_postings_are_locked_the_store_is_not_and_close_releases(tmp_path: Path) -> None:
    before = vm_locked_kib()
    ix = TantivyIndex(tmp_path / "ix", memory_lock="postings")
    ix.upsert(docs(0, 300))
    ix.commit()
    assert ix.resident is not None
    ix.resident.refresh()
    want = committed_files(tmp_path / "ix", LEVELS["postings"])
    assert want and set(ix.resident._maps) == want
    assert not any(p.suffix == ".store" for p in ix.resident._maps)
    size = sum(p.stat().st_size for p in want)
    assert ix.resident.locked_bytes == size
    # The kernel counts them as locked: whole pages, at least the files' bytes.
    assert vm_locked_kib() - before >= size // 1024
    assert ix.search(SearchQuery("cai cach"), Caller(A)).total == 300
    locked = vm_locked_kib()
    ix.close()
    assert ix.resident is None
    assert locked - vm_locked_kib() >= size // 1024  # all of it released


def test_new_segments_are_followed_and_merged_away_ones_released(tmp_path: Path) -> None:
    ix = TantivyIndex(tmp_path / "ix", memory_lock="all", shards=1)
    resident = ix.resident
    assert resident is not None
    seen: set[Path] = set()
    for batch in range(12):  # a segment per commit; tantivy merges 8 or more
        ix.upsert(docs(batch * 50, 50))
        ix.commit()
        resident.refresh()
        seen |= set(resident._maps)
        # tantivy merges in the background, so the committed set may move on at any moment:
        # compared exactly once merges have finished, below.
        assert resident.locked_bytes > 0
    assert any(p.suffix == ".store" for p in resident._maps)
    ix._shards[0].commit(close=True)  # wait for merges, keep the index open
    resident.refresh()
    now = set(resident._maps)
    assert now == committed_files(tmp_path / "ix", LEVELS["all"])
    assert all(p.exists() for p in now)
    assert seen - now, "merged-away segments are released"
    ix.close()


def test_the_follower_thread_locks_after_a_commit(tmp_path: Path) -> None:
    ix = TantivyIndex(tmp_path / "ix", memory_lock="postings")
    assert ix.resident is not None
    ix.upsert(docs(0, 100))
    ix.commit()  # kicks the follower: no explicit refresh here
    deadline = time.monotonic() + 10
    while not ix.resident.locked_bytes and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ix.resident.locked_bytes > 0
    thread = ix.resident._thread
    ix.close()
    assert thread is not None and not thread.is_alive()


def test_a_refused_mlock_warns_once_and_leaves_the_index_working(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ix = TantivyIndex(tmp_path / "ix", memory_lock="postings")
    resident = ix.resident
    assert resident is not None and resident._libc is not None
    resident.close()  # no follower thread: only the refreshes below ask for locks
    calls = []

    def refused(addr: int, size: int) -> int:  # the memlock limit, as the kernel answers it
        calls.append(size)
        return -1

    resident._libc.mlock = refused  # type: ignore[method-assign]
    ix.upsert(docs(0, 100))
    ix.commit()
    with caplog.at_level(logging.WARNING, logger="services.search.index.resident"):
        resident.refresh()
        resident.refresh()
    assert resident.locked_bytes == 0
    assert len(calls) == 2  # stops at the first refusal each round
    warnings = [r for r in caplog.records if "mlock refused" in r.message]
    assert len(warnings) == 1 and "LimitMEMLOCK" in warnings[0].message
    assert ix.search(SearchQuery("cai cach"), Caller(A)).total == 100
    ix.close()


def test_none_and_in_memory_lock_nothing_and_a_bad_level_is_refused(tmp_path: Path) -> None:
    assert TantivyIndex(tmp_path / "a", memory_lock="none").resident is None
    assert TantivyIndex(None, memory_lock="postings").resident is None
    with pytest.raises(ValueError, match="memory_lock must be one of"):
        ResidentFiles([tmp_path], "most")


def test_setting_reaches_the_serving_index_but_not_a_rebuild(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"LGSP_SEARCH_MEMORY_LOCK.*one of none, postings, all"):
        load_settings(env={"LGSP_SEARCH_MEMORY_LOCK": "everything"})
    settings = load_settings(env={"LGSP_PLATFORM_DATA_DIR": str(tmp_path)})
    assert settings.search.memory_lock == "postings"
    gens = Generations(settings)
    serving, state = gens.open("g1")
    rebuilding, state2 = gens.open("g2", serving=False)
    assert isinstance(serving, TantivyIndex) and serving.resident is not None
    assert isinstance(rebuilding, TantivyIndex) and rebuilding.resident is None
    for ix, st in ((serving, state), (rebuilding, state2)):
        ix.close()
        st.close()
