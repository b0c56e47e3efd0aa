"""`lgsp backup` while the platform runs, `lgsp restore` into a fresh data directory: the same
documents, accounts and search results, and the gateway's message log still verifies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lgsp import db
from lgsp.api.documents.v1 import documents_pb2 as dpb
from lgsp.backup import BackupError, backup, restore
from lgsp.config import load_settings
from services.gateway import tables as gateway_tables
from services.gateway.msglog import LogSigner, MessageLog, format_time, verify_log
from tests.integration.test_search_service import eventually, search_platform
from tests.services.identity.conftest import start_identity

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
