"""The payment platform mock's notices to service providers (callbacks).

When a payment is made the platform stores one notice per payment (table `callbacks`) and a
worker POSTs it to the payment's `callback_url`, signed (lgsp.connectors.payment.sign_notice:
HMAC-SHA256 of the exact body, header X-Payment-Signature; the body carries a Unix
`timestamp` and a random `nonce`, fresh for every attempt). Anything but a 2xx answer is
retried with exponential backoff (`backoff_s`, doubling, capped at 10 minutes) until
`max_attempts`; the state is in SQLite, so a restarted mock resumes where it stopped. A
notice given up on stays for the provider's reconciliation (GET /api/v1/payments).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx

from lgsp.connectors.payment import SIGNATURE_HEADER, sign_notice

log = logging.getLogger("national.payment")
MAX_BACKOFF_S = 600.0
VIETNAM = timezone(timedelta(hours=7))
ATTEMPT_TIMEOUT_S = 5.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS callbacks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, notification_id TEXT NOT NULL UNIQUE,
    payment_id TEXT NOT NULL, url TEXT NOT NULL, payment TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL, delivered_at TEXT,
    gave_up_at TEXT, last_status INTEGER, last_error TEXT, last_body BLOB,
    last_signature TEXT);
CREATE INDEX IF NOT EXISTS ix_callbacks_due ON callbacks (delivered_at, gave_up_at, next_at);
CREATE INDEX IF NOT EXISTS ix_callbacks_payment ON callbacks (payment_id);
"""


def _stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class CallbackSender:
    def __init__(
        self, db: sqlite3.Connection, secret: str, *, backoff_s: float, max_attempts: int
    ) -> None:
        self.db = db
        self.secret = secret
        self.backoff_s = backoff_s
        self.max_attempts = max_attempts
        self._wake = asyncio.Event()
        self._http: httpx.AsyncClient | None = None
        db.executescript(SCHEMA)

    def enqueue(self, payment: dict[str, Any], url: str) -> None:
        """Store the notice of a payment just made; the worker sends it at once."""
        fields = ("payment_id", "status", "amount_vnd", "receipt_code", "transaction_ref",
                  "paid_at")  # fmt: skip
        self.db.execute(
            "INSERT INTO callbacks (notification_id, payment_id, url, payment, next_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                f"NTF{uuid.uuid4().hex[:16].upper()}",
                payment["payment_id"],
                url,
                json.dumps({k: payment[k] for k in fields}, ensure_ascii=False),
                time.time(),
            ),
        )
        self._wake.set()

    # --- the worker --------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver due notices until cancelled (the mock's background task)."""
        async with httpx.AsyncClient(timeout=ATTEMPT_TIMEOUT_S) as http:
            self._http = http
            try:
                await self._deliver_forever()
            finally:
                self._http = None

    async def _deliver_forever(self) -> None:
        while True:
            due = self.db.execute(
                "SELECT * FROM callbacks WHERE delivered_at IS NULL AND gave_up_at IS NULL"
                " AND next_at <= ? ORDER BY next_at LIMIT 20",
                (time.time(),),
            ).fetchall()
            for row in due:
                await self._attempt(row)
            nxt = self.db.execute(
                "SELECT min(next_at) FROM callbacks WHERE delivered_at IS NULL"
                " AND gave_up_at IS NULL"
            ).fetchone()[0]
            wait = 60.0 if nxt is None else max(0.0, min(60.0, nxt - time.time()))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def _attempt(self, row: sqlite3.Row) -> None:
        attempts = row["attempts"] + 1
        status, error = await self.send(row, attempt=attempts)
        if status is not None and 200 <= status < 300:
            self.db.execute(
                "UPDATE callbacks SET attempts = ?, delivered_at = ?, last_status = ?,"
                " last_error = NULL WHERE id = ?",
                (attempts, _stamp(), status, row["id"]),
            )
            log.info(
                "callback delivered",
                extra={"payment_id": row["payment_id"], "attempts": attempts},
            )
            return
        delay = min(MAX_BACKOFF_S, self.backoff_s * 2 ** (attempts - 1))
        gave_up = _stamp() if attempts >= self.max_attempts else None
        self.db.execute(
            "UPDATE callbacks SET attempts = ?, next_at = ?, last_status = ?, last_error = ?,"
            " gave_up_at = ? WHERE id = ?",
            (attempts, time.time() + delay, status, error, gave_up, row["id"]),
        )
        log.warning(
            "callback failed" + ("; given up, left to reconciliation" if gave_up else ""),
            extra={
                "payment_id": row["payment_id"],
                "attempts": attempts,
                "status": status,
                "error": error,
                "retry_in_s": None if gave_up else round(delay, 1),
            },
        )

    async def send(
        self, row: sqlite3.Row, *, attempt: int, exact: bool = False
    ) -> tuple[int | None, str | None]:
        """One delivery: (HTTP status or None, error text). `exact` sends the very bytes and
        signature of the last delivery again (an eavesdropper's replay) instead of a freshly
        signed notice (the platform's own retry)."""
        if exact and row["last_body"] is not None:
            body, signature = bytes(row["last_body"]), row["last_signature"]
        else:
            body = json.dumps(
                {
                    "notification_id": row["notification_id"],
                    "event": "payment.paid",
                    "attempt": attempt,
                    "timestamp": int(time.time()),
                    "nonce": uuid.uuid4().hex,
                    "payment": json.loads(row["payment"]),
                },
                ensure_ascii=False,
                separators=(",", ":"),
            ).encode()
            signature = sign_notice(body, self.secret)
            self.db.execute(
                "UPDATE callbacks SET last_body = ?, last_signature = ? WHERE id = ?",
                (body, signature, row["id"]),
            )
        assert self._http is not None
        try:
            reply = await self._http.post(
                row["url"],
                content=body,
                headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature},
            )
        except httpx.HTTPError as e:
            return None, f"{type(e).__name__}: {e}"[:500]
        return reply.status_code, None if reply.is_success else reply.text[:500]

    def row(self, payment_id: str) -> sqlite3.Row | None:
        return self.db.execute(
            "SELECT * FROM callbacks WHERE payment_id = ? ORDER BY id DESC LIMIT 1", (payment_id,)
        ).fetchone()

    def describe(self, row: sqlite3.Row) -> dict[str, Any]:
        return {
            "notification_id": row["notification_id"],
            "payment_id": row["payment_id"],
            "url": row["url"],
            "attempts": row["attempts"],
            "delivered_at": row["delivered_at"],
            "gave_up_at": row["gave_up_at"],
            "last_status": row["last_status"],
            "last_error": row["last_error"],
            "next_at": None
            if row["delivered_at"] or row["gave_up_at"]
            else datetime.fromtimestamp(row["next_at"], UTC).isoformat(timespec="seconds"),
        }


def day_bounds(day: str) -> tuple[datetime, datetime]:
    """[00:00, 24:00) of a calendar day in Vietnam (UTC+7, no daylight saving)."""
    start = datetime.fromisoformat(day).replace(tzinfo=VIETNAM)
    return start, start + timedelta(days=1)
