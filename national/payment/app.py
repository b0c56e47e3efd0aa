"""HTTP API of the payment platform mock; state in <data_dir>/payment.db.

POST /api/v1/payments              {"amount_vnd", "receipt_code", "payer": {"full_name", …},
                                    "description"}; header Idempotency-Key honoured
GET  /api/v1/payments/{id}         PENDING → PAID (→ CONFIRMED); transaction_ref once paid
POST /api/v1/payments/{id}/confirm the province confirms it has reconciled a PAID payment
GET  /pay/{id}                     the citizen's payment page (no API key: a browser)
POST /pay/{id}                     simulate the citizen paying

The same Idempotency-Key with the same request answers the first payment again (200,
Idempotent-Replayed: true); with a different request it answers 409.
"""

from __future__ import annotations

import hashlib
import html
import json
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from national._common.app import MockConfig, build_app, read_json
from national._common.errors import ApiError, conflict, invalid, not_found
from national._common.store import open_db

MAX_AMOUNT_VND = 10_000_000_000
SCHEMA = """
CREATE TABLE IF NOT EXISTS payments (
    id TEXT PRIMARY KEY, idempotency_key TEXT UNIQUE, request_hash TEXT NOT NULL,
    amount_vnd INTEGER NOT NULL, receipt_code TEXT NOT NULL, payer TEXT NOT NULL,
    description TEXT, status TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL,
    paid_at TEXT, transaction_ref TEXT, confirmed_at TEXT);
"""


def now() -> datetime:
    return datetime.now(UTC)


def stamp(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds")


def create_app(config: MockConfig) -> Starlette:
    db = open_db(config.db_path, SCHEMA)

    def load(payment_id: str) -> sqlite3.Row:
        row = db.execute("SELECT * FROM payments WHERE id = ?", (payment_id,)).fetchone()
        if row is None:
            raise not_found("PAYMENT_NOT_FOUND", "Không tìm thấy yêu cầu thanh toán")
        return row

    def public(row: sqlite3.Row) -> dict[str, Any]:
        status = row["status"]
        if status == "PENDING" and row["expires_at"] < stamp(now()):
            status = "EXPIRED"
        return {
            "payment_id": row["id"],
            "status": status,
            "amount_vnd": row["amount_vnd"],
            "receipt_code": row["receipt_code"],
            "payer": json.loads(row["payer"]),
            "description": row["description"],
            "pay_url": f"{config.public_url}/pay/{row['id']}",
            "created_at": row["created_at"],
            "expires_at": row["expires_at"],
            "paid_at": row["paid_at"],
            "transaction_ref": row["transaction_ref"],
            "confirmed_at": row["confirmed_at"],
        }

    async def create(request: Request) -> JSONResponse:
        body = await read_json(request)
        amount = body.get("amount_vnd")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise invalid("amount_vnd", "Số tiền phải là số nguyên dương (đồng)")
        if amount > MAX_AMOUNT_VND:
            raise invalid("amount_vnd", "Số tiền vượt quá hạn mức một giao dịch")
        receipt = body.get("receipt_code")
        if not isinstance(receipt, str) or not receipt.strip() or len(receipt) > 64:
            raise invalid("receipt_code", "Thiếu mã hồ sơ hoặc mã biên lai")
        payer = body.get("payer")
        if (
            not isinstance(payer, dict)
            or not isinstance(payer.get("full_name"), str)
            or not (payer["full_name"].strip())
        ):
            raise invalid("payer.full_name", "Thiếu họ tên người nộp tiền")
        payer = {k: v for k, v in payer.items() if isinstance(v, str) and len(v) <= 255}
        description = body.get("description") if isinstance(body.get("description"), str) else ""
        key = request.headers.get("idempotency-key")
        if key is not None and not 1 <= len(key) <= 255:
            raise invalid("Idempotency-Key", "Khóa Idempotency-Key không hợp lệ")
        canonical = json.dumps(
            [amount, receipt, payer, description], ensure_ascii=False, sort_keys=True
        )
        request_hash = hashlib.sha256(canonical.encode()).hexdigest()
        if key is not None:
            seen = db.execute("SELECT * FROM payments WHERE idempotency_key = ?", (key,)).fetchone()
            if seen is not None:
                if seen["request_hash"] != request_hash:
                    raise conflict(
                        "IDEMPOTENCY_KEY_REUSED",
                        "Khóa Idempotency-Key đã được dùng cho một yêu cầu khác",
                    )
                return JSONResponse(public(seen), 200, headers={"Idempotent-Replayed": "true"})
        created = now()
        payment_id = f"PAY{created:%y%m%d}{uuid.uuid4().hex[:12].upper()}"
        db.execute(
            "INSERT INTO payments (id, idempotency_key, request_hash, amount_vnd, receipt_code,"
            " payer, description, status, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 'PENDING', ?, ?)",
            (
                payment_id,
                key,
                request_hash,
                amount,
                receipt.strip(),
                json.dumps(payer, ensure_ascii=False),
                description,
                stamp(created),
                stamp(created + timedelta(hours=24)),
            ),
        )
        return JSONResponse(public(load(payment_id)), 201)

    async def get(request: Request) -> JSONResponse:
        return JSONResponse(public(load(request.path_params["payment_id"])))

    async def confirm(request: Request) -> JSONResponse:
        row = load(request.path_params["payment_id"])
        if row["status"] == "CONFIRMED":
            return JSONResponse(public(row))
        if row["status"] != "PAID":
            raise conflict("PAYMENT_NOT_PAID", "Khoản thanh toán chưa được người nộp thanh toán")
        db.execute(
            "UPDATE payments SET status = 'CONFIRMED', confirmed_at = ? WHERE id = ?",
            (stamp(now()), row["id"]),
        )
        return JSONResponse(public(load(row["id"])))

    async def pay_page(request: Request) -> HTMLResponse:
        p = public(load(request.path_params["payment_id"]))
        amount = f"{p['amount_vnd']:,}".replace(",", ".")
        return HTMLResponse(
            "<!doctype html><html lang='vi'><meta charset='utf-8'><title>Thanh toán</title>"
            f"<h1>Thanh toán trực tuyến</h1><p>Mã hồ sơ: {html.escape(p['receipt_code'])}</p>"
            f"<p>Số tiền: {amount} đ</p><p>Trạng thái: {html.escape(p['status'])}</p>"
            "<form method='post'><button>Thanh toán</button></form></html>"
        )

    async def pay(request: Request) -> JSONResponse:
        row = load(request.path_params["payment_id"])
        p = public(row)
        if p["status"] in {"PAID", "CONFIRMED"}:
            return JSONResponse(p)
        if p["status"] == "EXPIRED":
            raise ApiError(410, "PAYMENT_EXPIRED", "Yêu cầu thanh toán đã hết hạn")
        ref = f"FT{now():%y%m%d}{uuid.uuid4().int % 10**10:010d}"
        db.execute(
            "UPDATE payments SET status = 'PAID', paid_at = ?, transaction_ref = ? WHERE id = ?",
            (stamp(now()), ref, row["id"]),
        )
        return JSONResponse(public(load(row["id"])))

    return build_app(
        config,
        [
            Route("/api/v1/payments", create, methods=["POST"]),
            Route("/api/v1/payments/{payment_id}", get, methods=["GET"]),
            Route("/api/v1/payments/{payment_id}/confirm", confirm, methods=["POST"]),
            Route("/pay/{payment_id}", pay_page, methods=["GET"]),
            Route("/pay/{payment_id}", pay, methods=["POST"]),
        ],
        on_shutdown=db.close,
    )
