"""The portal's pushes of online dossiers to the provinces.

A province registers where it takes pushes (`PUT /api/v1/subscriptions/{province_code}`
{"url", "secret"}). Each dossier filed online is queued in the `pushes` table (SQLite, so a
restart resumes) and POSTed to its province's URL, signed as lgsp.connectors.portal_push
says. The province's answer settles it:

    2xx {"receipt_code"}   taken over: recorded as the handover (the same as an ack)
    422                    refused by the province's rules: the dossier gets status 3
                           (Từ chối tiếp nhận) with the province's message as the reason
    other 4xx but 401, 403, 408, 429
                           given up (state "failed", logged): the push itself is wrong
    401, 403, 408, 429, 5xx, no answer
                           retried with exponential backoff (0.5 s doubling, at most 60 s)

A dossier taken over by the pull handover meanwhile is not pushed again. While the mock is
"down" (POST /_faults) it pushes nothing: a system that is down sends nothing either.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import httpx

from lgsp.connectors.portal_push import sign

log = logging.getLogger("national.public_service_portal.push")

SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriptions (
    province_code TEXT PRIMARY KEY, url TEXT NOT NULL, secret TEXT NOT NULL,
    updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pushes (
    portal_code TEXT PRIMARY KEY, province_code TEXT NOT NULL, state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL,
    last_status INTEGER, last_error TEXT, last_body BLOB, last_headers TEXT,
    settled_at TEXT);
CREATE INDEX IF NOT EXISTS ix_pushes_due ON pushes (state, next_attempt_at);
"""
RETRY_STATUSES = {401, 403, 408, 425, 429}
MAX_BACKOFF_S = 60.0
TIMEOUT_S = 5.0


def backoff(attempts: int) -> float:
    return min(MAX_BACKOFF_S, 0.5 * 2 ** max(0, attempts - 1)) * random.uniform(0.8, 1.2)


class Pusher:
    """Delivers the queued pushes; `settle_*` are the portal's own handover and refusal."""

    def __init__(
        self,
        db: sqlite3.Connection,
        *,
        dossier_of: Callable[[str], dict[str, Any] | None],
        hand_over: Callable[[str, str], object],
        refuse: Callable[[str, str], object],
        is_down: Callable[[], bool],
    ) -> None:
        self.db = db
        self.dossier_of = dossier_of  # the dossier as pushed (the handover's form)
        self.hand_over = hand_over
        self.refuse = refuse
        self.is_down = is_down
        self.wake = asyncio.Event()

    def enqueue(self, portal_code: str, province_code: str) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO pushes (portal_code, province_code, state, next_attempt_at)"
            " VALUES (?, ?, 'pending', ?)",
            (portal_code, province_code, time.time()),
        )
        self.wake.set()

    def subscribe(self, province_code: str, url: str, secret: str, stamp: str) -> None:
        self.db.execute(
            "INSERT INTO subscriptions (province_code, url, secret, updated_at) VALUES (?,?,?,?)"
            " ON CONFLICT (province_code) DO UPDATE SET url = excluded.url,"
            " secret = excluded.secret, updated_at = excluded.updated_at",
            (province_code, url, secret, stamp),
        )
        # A province that (re)registers is up: what waits for it goes now.
        self.db.execute(
            "UPDATE pushes SET next_attempt_at = ? WHERE province_code = ? AND state = 'pending'",
            (time.time(), province_code),
        )
        self.wake.set()

    def subscription(self, province_code: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.db.execute(
            "SELECT * FROM subscriptions WHERE province_code = ?", (province_code,)
        ).fetchone()
        return row

    def listing(self, portal_code: str | None = None) -> list[dict[str, Any]]:
        q = "SELECT * FROM pushes" + (" WHERE portal_code = ?" if portal_code else "")
        rows = self.db.execute(q + " ORDER BY rowid", (portal_code,) if portal_code else ())
        return [
            {k: r[k] for k in ("portal_code", "province_code", "state", "attempts",
                               "last_status", "last_error", "settled_at")}
            for r in rows
        ]  # fmt: skip

    async def run(self) -> None:
        """Deliver due pushes until cancelled."""
        async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
            while True:
                self.wake.clear()
                try:
                    if not self.is_down():
                        await self.round(client)
                except Exception:  # the next round tries again
                    log.exception("pushing online dossiers failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), self._idle())

    def _idle(self) -> float:
        due = self.db.execute(
            "SELECT MIN(p.next_attempt_at) FROM pushes p JOIN subscriptions s"
            " USING (province_code) WHERE p.state = 'pending'"
        ).fetchone()[0]
        return 1.0 if due is None else max(0.05, min(1.0, due - time.time()))

    async def round(self, client: httpx.AsyncClient) -> None:
        due = self.db.execute(
            "SELECT p.portal_code, p.attempts, s.url, s.secret FROM pushes p"
            " JOIN subscriptions s USING (province_code)"
            " WHERE p.state = 'pending' AND p.next_attempt_at <= ? ORDER BY p.rowid LIMIT 50",
            (time.time(),),
        ).fetchall()
        for row in due:
            if self.is_down():
                return
            await self.deliver(client, row["portal_code"], row["url"], row["secret"])

    async def deliver(
        self, client: httpx.AsyncClient, portal_code: str, url: str, secret: str
    ) -> None:
        dossier = self.dossier_of(portal_code)
        if dossier is None or dossier["handed_over_at"] or dossier["status"] == 3:
            # Taken over through the pull handover meanwhile, or refused there.
            self._settle(portal_code, "delivered", None, "settled without the push")
            return
        body = json.dumps(dossier, ensure_ascii=False).encode()
        headers = {**sign(secret, body), "Content-Type": "application/json"}
        self.db.execute(
            "UPDATE pushes SET last_body = ?, last_headers = ? WHERE portal_code = ?",
            (body, json.dumps(headers), portal_code),
        )
        status, answer = await self.post(client, url, body, headers)
        self.settle(portal_code, status, answer)

    async def post(
        self, client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int | None, Any]:
        try:
            reply = await client.post(url, content=body, headers=headers)
        except httpx.HTTPError as e:
            return None, f"{type(e).__name__}: {e}"
        try:
            return reply.status_code, reply.json()
        except ValueError:
            return reply.status_code, reply.text[:500]

    def settle(self, portal_code: str, status: int | None, answer: Any) -> None:
        """Record the province's answer to a push of `portal_code`."""
        message = answer.get("message", "") if isinstance(answer, dict) else str(answer)
        receipt = answer.get("receipt_code") if isinstance(answer, dict) else None
        if status is not None and 200 <= status < 300 and isinstance(receipt, str) and receipt:
            try:
                self.hand_over(portal_code, receipt)
            except Exception as e:  # another receipt code for it: the province's bug
                log.error("push of %s answered receipt %s: %s", portal_code, receipt, e)
                self._settle(portal_code, "failed", status, str(e))
                return
            log.info("online dossier %s taken over by the province as %s", portal_code, receipt)
            self._settle(portal_code, "delivered", status, None)
        elif status == 422:
            reason = message or "Cơ quan tiếp nhận từ chối hồ sơ"
            self.refuse(portal_code, reason)
            log.info("online dossier %s refused by the province: %s", portal_code, reason)
            self._settle(portal_code, "refused", status, reason)
        elif status is not None and 400 <= status < 500 and status not in RETRY_STATUSES:
            log.error("push of %s refused with %d, giving up: %s", portal_code, status, answer)
            self._settle(portal_code, "failed", status, message or str(answer))
        else:
            row = self.db.execute(
                "SELECT attempts FROM pushes WHERE portal_code = ?", (portal_code,)
            ).fetchone()
            attempts = (row["attempts"] if row else 0) + 1
            self.db.execute(
                "UPDATE pushes SET attempts = ?, next_attempt_at = ?, last_status = ?,"
                " last_error = ? WHERE portal_code = ? AND state = 'pending'",
                (attempts, time.time() + backoff(attempts), status, message or str(answer)[:500],
                 portal_code),
            )  # fmt: skip

    def _settle(self, portal_code: str, state: str, status: int | None, error: str | None) -> None:
        self.db.execute(
            "UPDATE pushes SET state = ?, last_status = ?, last_error = ?, attempts = attempts + 1,"
            " settled_at = datetime('now') WHERE portal_code = ?",
            (state, status, error, portal_code),
        )

    async def replay(self, portal_code: str, fresh: bool) -> dict[str, Any]:
        """Send the last push of `portal_code` again, as it was (same timestamp and
        signature: a captured request replayed) or signed anew; the province's answer."""
        row = self.db.execute(
            "SELECT p.*, s.url, s.secret FROM pushes p JOIN subscriptions s"
            " USING (province_code) WHERE p.portal_code = ?",
            (portal_code,),
        ).fetchone()
        if row is None:
            return {"status": None, "body": "no push of that dossier to a subscribed province"}
        body: bytes | None = row["last_body"]
        if body is None or fresh:
            dossier = self.dossier_of(portal_code) or {}
            body = json.dumps(dossier, ensure_ascii=False).encode()
            headers = {**sign(row["secret"], body), "Content-Type": "application/json"}
        else:
            headers = json.loads(row["last_headers"])
        async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
            status, answer = await self.post(client, row["url"], body, headers)
        if status is not None and 200 <= status < 300:
            self.settle(portal_code, status, answer)  # idempotent: the same receipt
        return {"status": status, "body": answer}
