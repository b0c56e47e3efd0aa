"""HTTP API of the public service portal mock; state in <data_dir>/public_service_portal.db.

POST /api/v1/dossiers                         a citizen files online (tests, demo)
GET  /api/v1/handover?agency_code=|province_code=&limit=N   online dossiers not yet taken
POST /api/v1/handover/{portal_code}/ack       {"receipt_code"}: the province took it over
POST /api/v1/statuses                         a dossier's status (1..10) from the province
GET  /api/v1/dossiers/{code}                  what the portal knows (portal or receipt code)

On first start the portal holds two online dossiers per province (seeded, deterministic).
"""

from __future__ import annotations

import json
import random
import re
import sqlite3
from datetime import UTC, date, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from lgsp.connectors.identifiers import IdentifierError, parse_citizen_id
from national._common import geo
from national._common.app import MockConfig, build_app, read_json
from national._common.errors import conflict, invalid, not_found
from national._common.store import open_db
from national.document_axis.edxml import valid_agency_code

STATUS_NAMES = {
    1: "Mới tiếp nhận",
    2: "Đã tiếp nhận",
    3: "Từ chối tiếp nhận",
    4: "Đang xử lý",
    5: "Yêu cầu bổ sung hồ sơ",
    6: "Chờ nộp phí, lệ phí",
    7: "Công dân rút hồ sơ",
    8: "Dừng xử lý",
    9: "Đã xử lý xong",
    10: "Đã trả kết quả",
}
REASON_REQUIRED = {3, 5, 7, 8}
FINAL = {3, 7, 8, 10}
PROCEDURES = (
    ("1.001193", "Đăng ký khai sinh", 3),  # agency: Sở Tư pháp (03) in the seeded data
    ("2.000908", "Chứng thực bản sao từ bản chính giấy tờ, văn bản", 3),
    ("1.009972", "Cấp giấy phép xây dựng mới đối với nhà ở riêng lẻ", 5),
)
PROCEDURE_CODE = re.compile(r"\d\.\d{6}")
SCHEMA = """
CREATE TABLE IF NOT EXISTS dossiers (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, portal_code TEXT UNIQUE, receipt_code TEXT UNIQUE,
    agency_code TEXT NOT NULL, procedure_code TEXT NOT NULL, procedure_name TEXT,
    applicant TEXT, submitted_at TEXT, handed_over_at TEXT,
    status INTEGER, status_updated_at TEXT);
CREATE TABLE IF NOT EXISTS status_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT, dossier_seq INTEGER NOT NULL, status INTEGER NOT NULL,
    updated_at TEXT NOT NULL, reason TEXT, received_at TEXT NOT NULL,
    UNIQUE (dossier_seq, status, updated_at));
"""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _str(body: dict[str, Any], key: str, message: str, max_len: int = 255) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise invalid(key, message)
    return value.strip()


def _agency(body: dict[str, Any]) -> str:
    code = _str(body, "agency_code", "Thiếu mã định danh cơ quan tiếp nhận", 35)
    if not valid_agency_code(code):
        raise invalid("agency_code", "Mã định danh cơ quan không hợp lệ")
    return code


def _procedure(body: dict[str, Any]) -> str:
    code = _str(body, "procedure_code", "Thiếu mã thủ tục hành chính", 20)
    if not PROCEDURE_CODE.fullmatch(code):
        raise invalid("procedure_code", "Mã thủ tục hành chính không hợp lệ (dạng 1.001193)")
    return code


def _applicant(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid("applicant", "Thiếu thông tin người nộp hồ sơ")
    name = value.get("full_name")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise invalid("applicant.full_name", "Họ và tên người nộp không hợp lệ")
    id_number = value.get("identity_number")
    try:
        parse_citizen_id(str(id_number or ""))
    except IdentifierError as exc:
        raise invalid(
            "applicant.identity_number", "Số định danh cá nhân không hợp lệ", str(exc)
        ) from None
    return {k: v for k, v in value.items() if isinstance(v, str) and len(v) <= 255}


def _public(row: sqlite3.Row, history: list[sqlite3.Row] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "portal_code": row["portal_code"],
        "receipt_code": row["receipt_code"],
        "agency_code": row["agency_code"],
        "procedure_code": row["procedure_code"],
        "procedure_name": row["procedure_name"],
        "applicant": json.loads(row["applicant"]) if row["applicant"] else None,
        "submitted_at": row["submitted_at"],
        "handed_over_at": row["handed_over_at"],
        "status": row["status"],
        "status_name": STATUS_NAMES.get(row["status"]),
        "status_updated_at": row["status_updated_at"],
    }
    if history is not None:
        out["history"] = [
            {"status": h["status"], "updated_at": h["updated_at"], "reason": h["reason"]}
            for h in history
        ]
    return out


def seed_dossiers(db: sqlite3.Connection, seed: int) -> None:
    if db.execute("SELECT 1 FROM dossiers LIMIT 1").fetchone() is not None:
        return
    from national.population.data import generate

    rng = random.Random(f"public_service_portal:{seed}")
    by_province: dict[str, list[Any]] = {}
    for hh in generate(seed).households.values():
        by_province.setdefault(hh.province, []).append(hh.members[0])
    n = 0
    for province in geo.PROVINCE_NAMES:
        suffix = geo.province_agency_code(province).rsplit(".", 1)[1]
        for code, name, dept in rng.sample(PROCEDURES, 2):
            n += 1
            person = rng.choice(by_province[province])
            applicant = {
                "full_name": person.full_name,
                "identity_number": person.id_number,
                "birth_date": person.birth_date.isoformat(),
                "address": person.permanent_address,
                "phone": f"09{rng.randint(0, 99_999_999):08d}",
            }
            day = date(2025, 7, 1 + n % 28)
            db.execute(
                "INSERT INTO dossiers (portal_code, agency_code, procedure_code, procedure_name,"
                " applicant, submitted_at, status) VALUES (?, ?, ?, ?, ?, ?, 1)",
                (
                    f"DVCQG-{day:%y%m%d}-{n:06d}",
                    f"000.00.{dept:02d}.{suffix}",
                    code,
                    name,
                    json.dumps(applicant, ensure_ascii=False),
                    f"{day.isoformat()}T08:{n % 60:02d}:00.000+07:00",
                ),
            )


def create_app(config: MockConfig) -> Starlette:
    db = open_db(config.db_path, SCHEMA)
    seed_dossiers(db, config.seed)

    def by_code(code: str) -> sqlite3.Row:
        row = db.execute(
            "SELECT * FROM dossiers WHERE portal_code = ? OR receipt_code = ?", (code, code)
        ).fetchone()
        if row is None:
            raise not_found("DOSSIER_NOT_FOUND", "Không tìm thấy hồ sơ")
        return row

    async def submit(request: Request) -> JSONResponse:
        body = await read_json(request)
        agency, procedure = _agency(body), _procedure(body)
        applicant = _applicant(body.get("applicant"))
        name = body.get("procedure_name") if isinstance(body.get("procedure_name"), str) else None
        stamp = now()
        cur = db.execute(
            "INSERT INTO dossiers (agency_code, procedure_code, procedure_name, applicant,"
            " submitted_at, status) VALUES (?, ?, ?, ?, ?, 1)",
            (agency, procedure, name, json.dumps(applicant, ensure_ascii=False), stamp),
        )
        portal_code = f"DVCQG-{datetime.now(UTC):%y%m%d}-{cur.lastrowid:06d}"
        db.execute(
            "UPDATE dossiers SET portal_code = ? WHERE seq = ?", (portal_code, cur.lastrowid)
        )
        return JSONResponse(_public(by_code(portal_code)), 201)

    async def handover(request: Request) -> JSONResponse:
        q = request.query_params
        raw_limit = q.get("limit", "20")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 100:
            raise invalid("limit", "Tham số limit phải từ 1 đến 100")
        if q.get("agency_code"):
            where, arg = "agency_code = ?", q["agency_code"]
        elif q.get("province_code") and re.fullmatch(r"[A-Z]\d{2}", q["province_code"]):
            where, arg = "agency_code LIKE ?", f"%.{q['province_code']}"
        else:
            raise invalid("agency_code", "Cần agency_code hoặc province_code (ví dụ H30)")
        rows = db.execute(
            f"SELECT * FROM dossiers WHERE {where} AND portal_code IS NOT NULL "
            "AND handed_over_at IS NULL ORDER BY seq LIMIT ?",
            (arg, int(raw_limit)),
        ).fetchall()
        return JSONResponse({"dossiers": [_public(r) for r in rows]})

    async def ack(request: Request) -> JSONResponse:
        row = by_code(request.path_params["portal_code"])
        body = await read_json(request)
        receipt = _str(body, "receipt_code", "Thiếu mã hồ sơ (số biên nhận) của tỉnh", 64)
        if row["handed_over_at"] is not None:
            if row["receipt_code"] != receipt:
                raise conflict("ALREADY_HANDED_OVER", "Hồ sơ đã được tiếp nhận với mã khác")
            return JSONResponse({**_public(row), "already_acked": True})
        other = db.execute("SELECT 1 FROM dossiers WHERE receipt_code = ?", (receipt,)).fetchone()
        if other is not None:
            raise conflict("RECEIPT_CODE_IN_USE", "Mã hồ sơ đã được dùng cho hồ sơ khác")
        db.execute(
            "UPDATE dossiers SET receipt_code = ?, handed_over_at = ? WHERE seq = ?",
            (receipt, now(), row["seq"]),
        )
        return JSONResponse({**_public(by_code(receipt)), "already_acked": False})

    async def status(request: Request) -> JSONResponse:
        body = await read_json(request)
        receipt = _str(body, "receipt_code", "Thiếu mã hồ sơ", 64)
        code = body.get("status")
        if not isinstance(code, int) or isinstance(code, bool) or code not in STATUS_NAMES:
            raise invalid("status", "Trạng thái hồ sơ phải là số từ 1 đến 10")
        raw_time = _str(body, "updated_at", "Thiếu thời điểm cập nhật (ISO 8601)", 40)
        try:
            updated = datetime.fromisoformat(raw_time)
        except ValueError:
            raise invalid("updated_at", "Thời điểm cập nhật không hợp lệ (ISO 8601)") from None
        if updated.tzinfo is None:
            raise invalid("updated_at", "Thời điểm cập nhật phải có múi giờ")
        reason = body.get("reason") if isinstance(body.get("reason"), str) else None
        if code in REASON_REQUIRED and not (reason and reason.strip()):
            raise invalid("reason", f"Trạng thái {code} ({STATUS_NAMES[code]}) cần có lý do")
        stamp = updated.astimezone(UTC).isoformat(timespec="milliseconds")
        row = db.execute("SELECT * FROM dossiers WHERE receipt_code = ?", (receipt,)).fetchone()
        if row is None:
            # A dossier filed at the counter: the portal learns of it from its first status.
            agency, procedure = _agency(body), _procedure(body)
            cur = db.execute(
                "INSERT INTO dossiers (receipt_code, agency_code, procedure_code, procedure_name)"
                " VALUES (?, ?, ?, ?)",
                (receipt, agency, procedure, body.get("procedure_name")),
            )
            row = db.execute("SELECT * FROM dossiers WHERE seq = ?", (cur.lastrowid,)).fetchone()
        seen = db.execute(
            "SELECT 1 FROM status_log WHERE dossier_seq = ? AND status = ? AND updated_at = ?",
            (row["seq"], code, stamp),
        ).fetchone()
        if seen is not None:
            return JSONResponse({**_public(row), "duplicate": True})
        if row["status_updated_at"] is not None and stamp < row["status_updated_at"]:
            raise conflict("STALE_STATUS", "Trạng thái cũ hơn trạng thái cổng đang có")
        if row["status_updated_at"] is not None and row["status"] in FINAL:
            raise conflict("FINAL_STATUS", "Hồ sơ đã ở trạng thái kết thúc")
        db.execute(
            "INSERT INTO status_log (dossier_seq, status, updated_at, reason, received_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (row["seq"], code, stamp, reason, now()),
        )
        db.execute(
            "UPDATE dossiers SET status = ?, status_updated_at = ? WHERE seq = ?",
            (code, stamp, row["seq"]),
        )
        return JSONResponse({**_public(by_code(receipt)), "duplicate": False})

    async def get_dossier(request: Request) -> JSONResponse:
        row = by_code(request.path_params["code"])
        history = db.execute(
            "SELECT * FROM status_log WHERE dossier_seq = ? ORDER BY updated_at, id", (row["seq"],)
        ).fetchall()
        return JSONResponse(_public(row, history))

    return build_app(
        config,
        [
            Route("/api/v1/dossiers", submit, methods=["POST"]),
            Route("/api/v1/handover", handover, methods=["GET"]),
            Route("/api/v1/handover/{portal_code}/ack", ack, methods=["POST"]),
            Route("/api/v1/statuses", status, methods=["POST"]),
            Route("/api/v1/dossiers/{code}", get_dossier, methods=["GET"]),
        ],
        on_shutdown=db.close,
    )
