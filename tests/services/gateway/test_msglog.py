"""The message log: chained, sealed, written in batches without loss; tampering of any kind is
detected and the first bad entry named; retention keeps it verifiable; exports verify offline."""

from __future__ import annotations

import io
import itertools
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from lgsp import db
from services.gateway import tables as t
from services.gateway.msglog import (
    LogSigner,
    MessageLog,
    apply_retention,
    export_log,
    format_time,
    verify_export,
    verify_log,
)


def _entry(i: int) -> dict:
    return {
        "id": f"00000000-0000-0000-0000-{i:012d}",
        "time": format_time(1_750_000_000 + i),
        "client_member": "000.00.61.H27:motcua",
        "service_member": "documents",
        "caller": "client:motcua",
        "method": "/lgsp.api.documents.v1.DocumentService/GetDocument",
        "status_code": 0,
        "duration_us": 800 + i,
        "trace_id": f"{i:032x}",
        "request_sha256": "a" * 64,
        "response_sha256": "b" * 64,
        "request_size": 10,
        "response_size": 20,
    }


async def _log(url: str, data_dir: Path, n: int, seal_every: int = 10) -> MessageLog:
    engine = db.create_engine(url)
    db.migrate(engine, t.MIGRATIONS)
    log = MessageLog(
        engine, LogSigner.load_or_create(data_dir), batch_size=7, seal_every=seal_every
    )
    await log.open()
    for i in range(1, n + 1):
        log.append(**_entry(i))
    await log.close()
    return log


def _exec(log: MessageLog, stmt: sa.Executable) -> None:
    with log.engine.begin() as conn:
        conn.execute(stmt)


async def test_every_entry_is_written_chained_and_sealed(db_url: str, tmp_path: Path) -> None:
    log = await _log(db_url, tmp_path, 45)
    assert (log.appended, log.written, log.pending) == (45, 45, 0)
    result = verify_log(log.engine)
    assert result.valid, result.describe()
    assert (result.checked, result.first_seq, result.last_seq) == (45, 1, 45)
    with log.engine.connect() as conn:
        seals = conn.execute(sa.select(t.log_seals).order_by(t.log_seals.c.last_seq)).all()
    # Batches of 7, a seal once ≥ 10 entries are unsealed, and the tail sealed at close.
    assert seals[-1].last_seq == 45 and seals[0].first_seq == 1
    assert all(a.last_seq + 1 == b.first_seq for a, b in itertools.pairwise(seals))
    assert result.seals_checked == len(seals)
    # A restart continues the same chain.
    again = MessageLog(log.engine, LogSigner.load_or_create(tmp_path))
    await again.open()
    again.append(**_entry(46))
    await again.close()
    assert verify_log(log.engine).checked == 46


@pytest.mark.parametrize(
    ("tamper", "bad_seq", "reason"),
    [
        ("alter", 17, "hash mismatch"),
        ("alter_rehash", 18, "broken chain"),
        ("rewrite_chain", 20, "seal mismatch"),
        ("delete_middle", 17, "gap"),
        ("delete_sealed_tail", 41, "gap"),
        ("delete_head", 1, "gap"),
        ("bad_signature", 20, "bad signature"),
    ],
)
async def test_tampering_is_detected_at_the_first_bad_entry(
    tamper: str, bad_seq: int, reason: str, tmp_path: Path
) -> None:
    log = await _log(f"sqlite:///{tmp_path / 'gw.db'}", tmp_path, 45)
    ml = t.message_log
    if tamper == "alter":
        _exec(log, sa.update(ml).where(ml.c.seq == 17).values(status_code=7))
    elif tamper in ("alter_rehash", "rewrite_chain"):
        # Change an entry and recompute its hash (and, for a rewrite, every later link).
        from services.gateway.msglog import entry_hash

        with log.engine.begin() as conn:
            rows = [dict(r) for r in conn.execute(sa.select(ml).order_by(ml.c.seq)).mappings()]
            prev = rows[15]["entry_hash"]
            for row in rows[16:]:
                if row["seq"] == 17:
                    row["status_code"] = 7
                elif tamper == "alter_rehash":
                    break
                row["prev_hash"] = prev
                row["entry_hash"] = prev = entry_hash(row)
                conn.execute(sa.update(ml).where(ml.c.seq == row["seq"]).values(**row))
    elif tamper == "delete_middle":
        _exec(log, sa.delete(ml).where(ml.c.seq == 17))
    elif tamper == "delete_sealed_tail":
        _exec(log, sa.delete(ml).where(ml.c.seq > 40))
    elif tamper == "delete_head":
        _exec(log, sa.delete(ml).where(ml.c.seq <= 3))
    elif tamper == "bad_signature":
        seals = t.log_seals
        with log.engine.begin() as conn:
            seal = conn.execute(sa.select(seals).where(seals.c.last_seq >= 17).limit(1)).first()
            assert seal is not None
            bad_seq = seal.last_seq
            forged = "00" * 64
            conn.execute(sa.update(seals).where(seals.c.id == seal.id).values(signature=forged))
    result = verify_log(log.engine)
    assert not result.valid
    if tamper == "rewrite_chain":
        with log.engine.connect() as conn:
            bad_seq = conn.execute(
                sa.select(sa.func.min(t.log_seals.c.last_seq)).where(t.log_seals.c.last_seq >= 17)
            ).scalar()
    assert result.first_bad_seq == bad_seq, result.describe()
    assert reason in result.reason


async def test_retention_deletes_whole_sealed_batches_and_stays_verifiable(tmp_path: Path) -> None:
    log = await _log(f"sqlite:///{tmp_path / 'gw.db'}", tmp_path, 45)
    deleted, checkpoint = apply_retention(log.engine, format_time(1_750_000_000 + 25))
    with log.engine.connect() as conn:
        sealed = [r.last_seq for r in conn.execute(sa.select(t.log_seals))]
        first = conn.execute(sa.select(sa.func.min(t.message_log.c.seq))).scalar()
    assert checkpoint in sealed and checkpoint <= 24 and deleted == checkpoint
    assert first == checkpoint + 1
    result = verify_log(log.engine)
    assert result.valid and result.first_seq == checkpoint + 1, result.describe()
    # Deleting one more entry without a seal behind it is detected.
    _exec(log, sa.delete(t.message_log).where(t.message_log.c.seq == checkpoint + 1))
    assert verify_log(log.engine).first_bad_seq == checkpoint + 1


async def test_export_verifies_offline_and_detects_edits(tmp_path: Path) -> None:
    log = await _log(f"sqlite:///{tmp_path / 'gw.db'}", tmp_path, 45)
    out = io.StringIO()
    count = export_log(
        log.engine, out, start=format_time(1_750_000_000 + 12), end=format_time(1_750_000_030)
    )
    lines = out.getvalue().splitlines()
    header = json.loads(lines[0])
    assert header["first_seq"] == 12 and header["last_seq"] == 29
    # Runs on to the covering seal so every exported entry is under a signature.
    assert count == header["covered_to_seq"] - 11 and header["covered_to_seq"] >= 29
    result = verify_export(lines)
    assert result.valid and result.seals_checked >= 1, result.describe()
    signer = LogSigner.load_or_create(tmp_path)
    assert verify_export(lines, trusted_keys={signer.key_id: signer.public_raw.hex()}).valid
    # A key the auditor does not trust fails the seals.
    other = LogSigner.load_or_create(tmp_path / "other")
    assert not verify_export(lines, trusted_keys={other.key_id: other.public_raw.hex()}).valid
    edited = [
        line.replace('"status_code": 0', '"status_code": 2', 1) if '"seq": 15,' in line else line
        for line in lines
    ]
    bad = verify_export(edited)
    assert not bad.valid and bad.first_bad_seq == 15
    dropped = [line for line in lines if '"seq": 20,' not in line]
    assert verify_export(dropped).first_bad_seq == 20


async def test_cli_verify_export_and_retain(tmp_path: Path, monkeypatch, capsys) -> None:
    from lgsp.cli import main

    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    log = await _log(url, tmp_path, 30)
    monkeypatch.setenv("LGSP_GATEWAY_DATABASE_URL", url)
    monkeypatch.setenv("LGSP_PLATFORM_DATA_DIR", str(tmp_path))
    assert main(["log", "verify"]) == 0
    assert "OK: 30 entries" in capsys.readouterr().out
    export = tmp_path / "audit.jsonl"
    assert main(["log", "export", "--from", "2020-01-01", str(export)]) == 0
    assert main(["log", "verify", "--file", str(export)]) == 0
    capsys.readouterr()
    _exec(log, sa.update(t.message_log).where(t.message_log.c.seq == 9).values(caller="x"))
    assert main(["log", "verify"]) == 1
    assert "INVALID at entry 9: hash mismatch" in capsys.readouterr().out
    assert main(["log", "verify", "--from", "10"]) == 0
    assert main(["log", "retain", "--older-than-days", "0"]) == 0
    assert "entries deleted" in capsys.readouterr().out


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(max_size=40),
    number=st.integers(min_value=0, max_value=2**62),
)
def test_fast_entry_hash_is_the_canonical_json_hash(text: str, number: int) -> None:
    """LogEntry.compute_hash writes the canonical JSON by hand; it must be json.dumps's bytes
    (quotes, backslashes, control characters, Vietnamese, astral characters included)."""
    from services.gateway.msglog import _HASHED_FIELDS, LogEntry, entry_hash

    fields = {**_entry(1), "caller": text, "client_member": f'{text}"\\\n', "seq": number}
    fields["duration_us"] = number
    fields["prev_hash"] = "Hồ sơ đ\u2028\U0001f600"
    entry = LogEntry(**{name: fields[name] for name in _HASHED_FIELDS})
    assert entry.compute_hash() == entry_hash(fields)


async def test_durable_waits_for_the_commit_and_gives_up_when_the_log_cannot_write(
    tmp_path: Path,
) -> None:
    import asyncio

    from services.gateway.msglog import LogUnavailable

    engine = db.create_engine(f"sqlite:///{tmp_path / 'gw.db'}")
    db.migrate(engine, t.MIGRATIONS)
    log = MessageLog(engine, LogSigner.load_or_create(tmp_path), durable_timeout=0.3)
    await log.open()
    stop = asyncio.Event()
    writer = asyncio.create_task(log.run(stop))
    entries = [log.append(**_entry(i)) for i in range(1, 21)]
    await asyncio.gather(*(log.durable(e) for e in entries))  # one group commit
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.message_log)).scalar() == 20
    stop.set()
    await writer

    # No writer (or a database that does not answer): the answer is withheld, then refused.
    late = log.append(**_entry(21))
    started = asyncio.get_running_loop().time()
    with pytest.raises(LogUnavailable):
        await log.durable(late)
    assert asyncio.get_running_loop().time() - started < 1.0
    engine.dispose()
