"""`lgsp backup` while the platform runs, `lgsp restore` into a fresh data directory: the same
documents, accounts and search results, and the gateway's message log still verifies."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from lgsp import db
from lgsp.api.documents.v1 import documents_pb2 as dpb
from lgsp.backup import BackupError, backup, restore
from lgsp.bus import open_bus
from lgsp.config import Settings, load_settings
from lgsp.workdays import PROVINCE_TZ
from services.gateway import tables as gateway_tables
from services.gateway.msglog import LogSigner, MessageLog, format_time, verify_log
from services.mail.service_layer.mail import MailApp, MailRules
from tests.integration.test_search_service import eventually, search_platform
from tests.services.dossiers.figures_support import TS_CLERK, make_desk
from tests.services.identity.conftest import start_identity
from tests.services.mail.env import AGENCIES as MAIL_AGENCIES
from tests.services.mail.test_durability import MESSAGE as MAIL_MESSAGE
from tests.services.mail.test_durability import prepare as mail_prepare
from tests.services.mail.test_durability import stored

REPO = Path(__file__).resolve().parents[2]


def log_entry(i: int) -> dict[str, object]:
    return {
        "id": f"00000000-0000-0000-0000-{i:012d}",
        "time": format_time(1_780_000_000 + i),
        "client_member": "000.00.61.H27:motcua",
        "service_member": "documents",
        "caller": "client:motcua",
        "method": "/lgsp.api.documents.v1.DocumentService/GetDocument",
        "status_code": 0,
        "duration_us": 900,
        "trace_id": f"{i:032x}",
        "request_sha256": "a" * 64,
        "response_sha256": "b" * 64,
        "request_size": 10,
        "response_size": 20,
    }


async def test_a_backup_taken_while_running_restores_everything(tmp_path: Path) -> None:
    live, saved, fresh = tmp_path / "live", tmp_path / "backup", tmp_path / "fresh"
    live.mkdir()
    async with search_platform(live) as p:
        issued = [await p.issue() for _ in range(3)]
        await eventually(lambda: _found(p, len(issued)))
        before = sorted(await p.ids("ubnd-vt", "cai cach"))
        identity, ident, _ = await start_identity(live)
        admin = ident.users.get(username="admin", realm="master")
        engine = db.create_engine(p.settings.service("gateway").database_url)
        db.migrate(engine, gateway_tables.MIGRATIONS)
        log = MessageLog(engine, LogSigner.load_or_create(live), seal_every=10)
        await log.open()
        for i in range(1, 26):
            log.append(**log_entry(i))
        await log.close()
        engine.dispose()
        try:
            manifest = backup(p.settings, saved)  # the services keep running meanwhile
        finally:
            await identity.stop(0)
    names = {item["name"] for item in manifest["items"]}  # type: ignore[union-attr]
    assert {"bus.db", "documents/documents.db", "search/search-index"} <= names
    assert {"gateway/gateway-log-signing-key.pem", "documents/ca", "identity/identity.db"} <= names

    settings = load_settings(env={"LGSP_PLATFORM_DATA_DIR": str(fresh)})
    assert restore(settings, saved) == len(names)
    async with search_platform(fresh) as q:
        for doc in issued:
            got = await q.docs.as_("ubnd-vt").GetDocument(dpb.GetDocumentRequest(id=doc.id))
            assert (got.document.number_notation, got.document.subject) == (
                doc.number_notation,
                doc.subject,
            )
        assert sorted(await q.ids("ubnd-vt", "cai cach")) == before
        identity, ident, _ = await start_identity(fresh)
        try:
            assert ident.users.get(username="admin", realm="master").id == admin.id
        finally:
            await identity.stop(0)
    engine = db.create_engine(settings.service("gateway").database_url)
    result = verify_log(engine)
    engine.dispose()
    assert result.valid and result.checked == 25, result.reason


async def _found(p: object, n: int) -> bool:
    return len(await p.ids("ubnd-vt", "cai cach")) >= n  # type: ignore[attr-defined]


def test_restore_refuses_a_damaged_backup_and_a_data_directory_with_data(tmp_path: Path) -> None:
    live = load_settings(env={"LGSP_PLATFORM_DATA_DIR": str(tmp_path / "live")})
    (tmp_path / "live").mkdir()
    engine = db.create_engine(live.service("documents").database_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x TEXT)")
        conn.exec_driver_sql("INSERT INTO t VALUES ('văn bản')")
    engine.dispose()
    backup(live, tmp_path / "bk")
    with pytest.raises(BackupError, match="already has data"):
        restore(live, tmp_path / "bk")
    with pytest.raises(BackupError, match="not empty"):
        backup(live, tmp_path / "bk")
    damaged = tmp_path / "bk" / "documents" / "documents.db"
    data = bytearray(damaged.read_bytes())
    data[-1] ^= 0xFF
    damaged.write_bytes(bytes(data))
    fresh = load_settings(env={"LGSP_PLATFORM_DATA_DIR": str(tmp_path / "fresh")})
    with pytest.raises(BackupError, match=r"documents/documents\.db: damaged"):
        restore(fresh, tmp_path / "bk")
    assert not (tmp_path / "fresh" / "documents.db").exists()  # nothing restored


def test_the_commands_say_what_they_did(tmp_path: Path) -> None:
    env = {"LGSP_PLATFORM_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(REPO)}
    (tmp_path / "data").mkdir()
    engine = db.create_engine(f"sqlite:///{tmp_path / 'data' / 'bus.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x TEXT)")
    engine.dispose()

    def lgsp(*args: str, data: str = "data") -> subprocess.CompletedProcess[str]:
        run_env = {**env, "LGSP_PLATFORM_DATA_DIR": str(tmp_path / data)}
        cmd = [sys.executable, "-m", "lgsp.cli", *args]
        return subprocess.run(cmd, env=run_env, capture_output=True, text=True, timeout=60)

    made = lgsp("backup", str(tmp_path / "bk"))
    assert made.returncode == 0, made.stderr
    assert "bus.db:" in made.stdout and "stores," in made.stdout
    again = lgsp("restore", str(tmp_path / "bk"))
    assert again.returncode == 1 and "already has data" in again.stderr
    done = lgsp("restore", str(tmp_path / "bk"), data="other")
    assert done.returncode == 0 and "restored" in done.stdout


def _settings(data: Path) -> Settings:
    return load_settings(env={"LGSP_PLATFORM_DATA_DIR": str(data)})


def _database(url: str, text: str = "văn bản") -> None:
    engine = db.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (x TEXT)")
        conn.exec_driver_sql("INSERT INTO t VALUES (?)", (text,))
    engine.dispose()


def test_a_wrong_or_damaged_data_directory_is_refused_and_leaves_no_backup(
    tmp_path: Path,
) -> None:
    bk = tmp_path / "bk"
    with pytest.raises(BackupError, match="does not exist"):
        backup(_settings(tmp_path / "nowhere"), bk)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackupError, match="holds none of the platform's stores"):
        backup(_settings(tmp_path / "empty"), bk)
    live = _settings(tmp_path / "live")
    (tmp_path / "live").mkdir()
    _database(live.service("identity").database_url)
    (tmp_path / "live" / "documents.db").write_bytes(b"not a database, a truncated copy" * 200)
    with pytest.raises(BackupError, match=r"documents/documents\.db: .* cannot be read"):
        backup(live, bk)
    assert list(tmp_path.glob("bk*")) == []  # no folder that could pass for a backup


def test_an_interrupted_backup_leaves_nothing_that_looks_complete(tmp_path: Path) -> None:
    live = _settings(tmp_path / "live")
    (tmp_path / "live").mkdir()
    for name in ("identity", "documents", "dossiers"):
        _database(live.service(name).database_url)
    seen: list[str] = []

    def ctrl_c_after_two(line: str) -> None:
        seen.append(line)
        if len(seen) == 2:
            raise KeyboardInterrupt

    (tmp_path / "bk").mkdir()  # an empty folder given as DIR stays as it was
    with pytest.raises(KeyboardInterrupt):
        backup(live, tmp_path / "bk", say=ctrl_c_after_two)
    assert list((tmp_path / "bk").iterdir()) == []
    assert not (tmp_path / "bk.partial").exists()
    made = backup(live, tmp_path / "bk")  # and a second run works
    assert (tmp_path / "bk" / "manifest.json").exists() and made["items"]


async def test_the_bus_is_held_still_while_the_stores_are_copied(tmp_path: Path) -> None:
    """Under load, a bus copied apart from the databases held events of documents the copied
    documents database did not (search then found documents that did not exist). The backup
    holds the bus's write lock while it copies: a publish and a commit made meanwhile wait for
    it, and the copy holds neither; the consumer resumes after what it had committed."""
    live = _settings(tmp_path / "live")
    (tmp_path / "live").mkdir()
    bus = open_bus(live.bus.url, partitions=1)
    group = "search-indexer"
    try:
        await bus.publish("lgsp.documents.v1", b"k", b"first")
        consumer = bus.consumer(group, ["lgsp.documents.v1"])
        assert [m.value for m in await consumer.poll(2.0)] == [b"first"]
        await consumer.commit()
        _database(live.service("documents").database_url)
        loop = asyncio.get_running_loop()
        meanwhile: list[asyncio.Future[None]] = []

        def during_copy(line: str) -> None:
            # A relay publishes while the stores are being copied (not awaited here: it waits).
            if not meanwhile and "bytes" in line:  # a store copied: the rest are being copied
                second = bus.publish("lgsp.documents.v1", b"k", b"second")
                meanwhile.append(asyncio.run_coroutine_threadsafe(second, loop))  # type: ignore[arg-type]
                time.sleep(0.5)
                assert not meanwhile[0].done(), "a publish went through while the bus was held"

        await asyncio.to_thread(backup, live, tmp_path / "bk", say=during_copy)
        await asyncio.wrap_future(meanwhile[0])  # the lock released: it went through
        assert [m.value for m in await consumer.poll(2.0)] == [b"second"]
        await consumer.close()
    finally:
        await bus.close()
    restored = _settings(tmp_path / "fresh")
    restore(restored, tmp_path / "bk")
    bus = open_bus(restored.bus.url, partitions=1)
    try:
        consumer = bus.consumer(group, ["lgsp.documents.v1"])
        assert await consumer.poll(1.0) == []  # "first" committed; "second" not in the copy
        await bus.publish("lgsp.documents.v1", b"k", b"third")
        assert [m.value for m in await consumer.poll(2.0)] == [b"third"]
        await consumer.close()
    finally:
        await bus.close()


def test_restore_is_refused_while_a_process_holds_a_store_open(tmp_path: Path) -> None:
    live = _settings(tmp_path / "live")
    (tmp_path / "live").mkdir()
    _database(live.service("documents").database_url)
    backup(live, tmp_path / "bk")
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1]); "
            "c.execute('CREATE TABLE x (y)'); print('open', flush=True); time.sleep(60)",
            str(fresh / "documents.db"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(BackupError, match=rf"documents\.db is open in process {holder.pid}"):
            restore(_settings(fresh), tmp_path / "bk", force=True)
    finally:
        holder.kill()
        holder.wait()
    assert restore(_settings(fresh), tmp_path / "bk", force=True) == 1


def test_search_keeps_the_serving_and_roll_back_generations_not_one_being_built(
    tmp_path: Path,
) -> None:
    live = _settings(tmp_path / "live")
    root = tmp_path / "live" / "search-index"
    for gen in ("g1-old", "g2-rollback", "g3-serving", "g4-building"):
        (root / gen).mkdir(parents=True)
        (root / gen / "layout.json").write_text(gen)
    (root / "SERVED").write_text("g1-old\ng2-rollback\ng3-serving\n")
    (root / "CURRENT").write_text("g3-serving\n")
    (root / "cursor.key").write_bytes(b"k" * 32)
    backup(live, tmp_path / "bk")
    copied = sorted(p.name for p in (tmp_path / "bk" / "search" / "search-index").iterdir())
    assert copied == ["CURRENT", "SERVED", "cursor.key", "g2-rollback", "g3-serving"]


def test_dossiers_and_mail_come_back_the_same(tmp_path: Path) -> None:
    live = _settings(tmp_path / "live")
    (tmp_path / "live").mkdir()
    now = datetime(2026, 12, 3, 9, 30, tzinfo=PROVINCE_TZ)
    dossier = make_desk(live.service("dossiers").database_url, now).file(now)
    address = mail_prepare(tmp_path / "live")
    mail_engine = db.create_engine(live.service("mail").database_url)
    MailApp(mail_engine, MAIL_AGENCIES, MailRules()).deliver(
        MAIL_MESSAGE, "ban@example.org", [address]
    )
    mail_engine.dispose()
    backup(live, tmp_path / "bk")

    fresh = _settings(tmp_path / "fresh")
    restore(fresh, tmp_path / "bk")
    again = make_desk(fresh.service("dossiers").database_url, now).app.get(
        receipt=dossier.receipt_code, principal=TS_CLERK
    )
    assert (again.id, again.status, again.applicant.full_name, again.due_date) == (
        dossier.id,
        dossier.status,
        "Nguyễn Thị Hoa",
        dossier.due_date,
    )
    assert stored(tmp_path / "fresh", address) == 1
