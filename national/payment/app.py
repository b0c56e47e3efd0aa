"""HTTP API of the payment platform mock; state in <data_dir>/payment.db.

POST /api/v1/payments              {"amount_vnd", "receipt_code", "payer": {"full_name", …},
                                    "description", "callback_url"}; Idempotency-Key honoured
GET  /api/v1/payments?paid_from=&paid_to=  (or ?date=YYYY-MM-DD, a day in Vietnam time)
                                   the paid transactions, oldest first, for reconciliation
GET  /api/v1/payments/{id}         PENDING → PAID (→ CONFIRMED), or CANCELLED / EXPIRED
POST /api/v1/payments/{id}/confirm the province confirms it has reconciled a PAID payment
POST /api/v1/payments/{id}/cancel  the province voids a payment not made (paid at the desk)
GET  /pay/{id}                     the citizen's payment page (no API key: a browser)
POST /pay/{id}                     simulate the citizen paying; the notice goes out (callbacks);
                                   JSON, or a Vietnamese page for a browser (Accept: text/html)
GET  /_callbacks/{id}              test hook: the notice's delivery state
POST /_callbacks/{id}/replay       test hook: deliver the notice once more now (?exact=true:
                                   the very bytes and signature of the last delivery)

The same Idempotency-Key with the same request answers the first payment again (200,
Idempotent-Replayed: true); with a different request it answers 409.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from lgsp.connectors.payment import DEFAULT_CALLBACK_SECRET
from national._common.app import MockConfig, build_app, read_json
from national._common.errors import ApiError, conflict, invalid, not_found
from national._common.store import open_db
from national.payment import pages
from national.payment.callbacks import CallbackSender, day_bounds

MAX_AMOUNT_VND = 10_000_000_000
MAX_PAGE = 1000
SCHEMA = """
CREATE TABLE IF NOT EXISTS payments (
    id TEXT PRIMARY KEY, idempotency_key TEXT UNIQUE, request_hash TEXT NOT NULL,
    amount_vnd INTEGER NOT NULL, receipt_code TEXT NOT NULL, payer TEXT NOT NULL,
    description TEXT, status TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL,
    paid_at TEXT, transaction_ref TEXT, confirmed_at TEXT, callback_url TEXT,
    cancelled_at TEXT);
"""
# Columns added since the first version: a data directory of that version is upgraded.
ADDED_COLUMNS = ("callback_url", "cancelled_at")


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--callback-secret",
        default=os.environ.get("NATIONAL_PAYMENT_CALLBACK_SECRET", DEFAULT_CALLBACK_SECRET),
        help="shared secret the notices are signed with (env NATIONAL_PAYMENT_CALLBACK_SECRET)",
    )
    parser.add_argument(
        "--callback-backoff-s", type=float, default=2.0, help="first retry delay, doubling"
    )
    parser.add_argument("--callback-attempts", type=int, default=15, help="then give up")


def now() -> datetime:
    return datetime.now(UTC)


def stamp(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds")


def _check_callback_url(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 500:
        raise invalid("callback_url", "Địa chỉ nhận thông báo không hợp lệ")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid("callback_url", "Địa chỉ nhận thông báo phải là URL http(s)")
    return value


def _bound(request: Request, name: str) -> str:
    """A query bound as the stored form of a UTC time; 400 naming it otherwise."""
    try:
        t = datetime.fromisoformat(request.query_params[name])
    except ValueError:
        raise invalid(name, "Thời điểm phải theo ISO 8601, có múi giờ") from None
    if t.tzinfo is None:
        raise invalid(name, "Thời điểm phải có múi giờ")
    return stamp(t.astimezone(UTC))


def create_app(config: MockConfig) -> Starlette:
    db = open_db(config.db_path, SCHEMA)
    have = {r["name"] for r in db.execute("PRAGMA table_info(payments)")}
    for column in ADDED_COLUMNS:
        if column not in have:
            db.execute(f"ALTER TABLE payments ADD COLUMN {column} TEXT")
    db.execute("CREATE INDEX IF NOT EXISTS ix_payments_paid ON payments (paid_at, id)")
    options = config.options
    sender = CallbackSender(
        db,
        options.get("callback_secret") or DEFAULT_CALLBACK_SECRET,
        backoff_s=float(options.get("callback_backoff_s", 2.0)),
        max_attempts=int(options.get("callback_attempts", 15)),
    )

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
            "cancelled_at": row["cancelled_at"],
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
        callback_url = _check_callback_url(body.get("callback_url"))
        key = request.headers.get("idempotency-key")
        if key is not None and not 1 <= len(key) <= 255:
            raise invalid("Idempotency-Key", "Khóa Idempotency-Key không hợp lệ")
        canonical = json.dumps(
            [amount, receipt, payer, description]
            + ([callback_url] if callback_url else []),  # first version's hashes still match
            ensure_ascii=False,
            sort_keys=True,
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
            " payer, description, status, created_at, expires_at, callback_url)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 'PENDING', ?, ?, ?)",
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
                callback_url,
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

    async def cancel(request: Request) -> JSONResponse:
        row = load(request.path_params["payment_id"])
        if row["status"] in {"PAID", "CONFIRMED"}:
            raise conflict("PAYMENT_ALREADY_PAID", "Khoản thanh toán đã được người nộp thanh toán")
        if row["status"] != "CANCELLED":
            db.execute(
                "UPDATE payments SET status = 'CANCELLED', cancelled_at = ? WHERE id = ?",
                (stamp(now()), row["id"]),
            )
        return JSONResponse(public(load(row["id"])))

    async def listing(request: Request) -> JSONResponse:
        q = request.query_params
        if "date" in q:
            try:
                start, end = day_bounds(q["date"])
            except ValueError:
                raise invalid("date", "Ngày phải theo dạng YYYY-MM-DD") from None
            lo, hi = stamp(start.astimezone(UTC)), stamp(end.astimezone(UTC))
        elif "paid_from" in q and "paid_to" in q:
            lo, hi = _bound(request, "paid_from"), _bound(request, "paid_to")
        else:
            raise invalid("date", "Cần ngày (date) hoặc khoảng thời gian (paid_from, paid_to)")
        try:
            limit = int(q.get("limit", "500"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_PAGE:
            raise invalid("limit", f"Số bản ghi mỗi trang từ 1 đến {MAX_PAGE}")
        after = ("", "")
        if q.get("page_token"):
            try:
                paid_at, pid = json.loads(base64.urlsafe_b64decode(q["page_token"]))
                after = (str(paid_at), str(pid))
            except (ValueError, TypeError):
                raise invalid("page_token", "Mã trang không hợp lệ") from None
        rows = db.execute(
            "SELECT * FROM payments WHERE paid_at >= ? AND paid_at < ?"
            " AND (paid_at, id) > (?, ?) ORDER BY paid_at, id LIMIT ?",
            (lo, hi, *after, limit + 1),
        ).fetchall()
        token = ""
        if len(rows) > limit:
            rows = rows[:limit]
            last = rows[-1]
            token = base64.urlsafe_b64encode(
                json.dumps([last["paid_at"], last["id"]]).encode()
            ).decode()
        items = [public(r) for r in rows]
        return JSONResponse(
            {
                "payments": items,
                "count": len(items),
                "amount_vnd": sum(p["amount_vnd"] for p in items),
                "next_page_token": token,
            }
        )

    async def callback_state(request: Request) -> JSONResponse:
        row = sender.row(request.path_params["payment_id"])
        if row is None:
            raise not_found("CALLBACK_NOT_FOUND", "Không có thông báo cho khoản thanh toán này")
        return JSONResponse(sender.describe(row))

    async def replay(request: Request) -> JSONResponse:
        row = sender.row(request.path_params["payment_id"])
        if row is None:
            raise not_found("CALLBACK_NOT_FOUND", "Không có thông báo cho khoản thanh toán này")
        exact = request.query_params.get("exact") == "true"
        status, error = await sender.send(row, attempt=row["attempts"] + 1, exact=exact)
        return JSONResponse({"status": status, "error": error, "exact": exact})

    async def page(request: Request) -> HTMLResponse:
        try:
            return pages.pay_page(public(load(request.path_params["payment_id"])))
        except ApiError as e:
            return pages.error_page(e.status, e.message)

    async def pay(request: Request) -> Response:
        """The citizen pays: JSON for API callers, a page for the form in a browser."""
        browser = pages.wants_html(request)
        try:
            paid, already = settle(request.path_params["payment_id"])
        except ApiError as e:
            if browser:
                return pages.error_page(e.status, e.message)
            raise
        if browser:
            return pages.paid_page(paid, already=already)
        return JSONResponse(paid)

    def settle(payment_id: str) -> tuple[dict[str, Any], bool]:
        """The payment paid (and its notice queued), and whether it was paid before."""
        row = load(payment_id)
        p = public(row)
        if p["status"] in {"PAID", "CONFIRMED"}:
            return p, True
        if p["status"] == "EXPIRED":
            raise ApiError(410, "PAYMENT_EXPIRED", "Yêu cầu thanh toán đã hết hạn")
        if p["status"] == "CANCELLED":
            raise ApiError(410, "PAYMENT_CANCELLED", "Yêu cầu thanh toán đã bị hủy")
        ref = f"FT{now():%y%m%d}{uuid.uuid4().int % 10**10:010d}"
        db.execute(
            "UPDATE payments SET status = 'PAID', paid_at = ?, transaction_ref = ? WHERE id = ?",
            (stamp(now()), ref, row["id"]),
        )
        paid = public(load(row["id"]))
        if row["callback_url"]:
            sender.enqueue(paid, row["callback_url"])
        return paid, False

    async def deliver_notices(app: Starlette) -> None:
        await sender.run()

    return build_app(
        config,
        [
            Route("/api/v1/payments", create, methods=["POST"]),
            Route("/api/v1/payments", listing, methods=["GET"]),
            Route("/api/v1/payments/{payment_id}", get, methods=["GET"]),
            Route("/api/v1/payments/{payment_id}/confirm", confirm, methods=["POST"]),
            Route("/api/v1/payments/{payment_id}/cancel", cancel, methods=["POST"]),
            Route("/pay/{payment_id}", page, methods=["GET"]),
            Route("/pay/{payment_id}", pay, methods=["POST"]),
            Route("/_callbacks/{payment_id}", callback_state, methods=["GET"]),
            Route("/_callbacks/{payment_id}/replay", replay, methods=["POST"]),
        ],
        on_shutdown=db.close,
        background=deliver_notices,
    )
