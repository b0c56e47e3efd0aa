"""HTTP API of the public service portal mock; state in <data_dir>/public_service_portal.db.

POST /api/v1/dossiers                         a citizen files online (tests, demo)
GET  /api/v1/handover?agency_code=|province_code=&limit=N   online dossiers not yet taken
POST /api/v1/handover/{portal_code}/ack       {"receipt_code"}: the province took it over
POST /api/v1/statuses                         a dossier's status (1..10) from the province
GET  /api/v1/dossiers/{code}                  what the portal knows (portal or receipt code)
POST /api/v1/handover/{portal_code}/refuse    {"reason"}: the province refused it (status 3)
PUT  /api/v1/subscriptions/{province_code}    {"url", "secret"}: where the province takes pushes
GET  /api/v1/subscriptions/{province_code}    the URL registered (never the secret)
GET  /_pushes[?portal_code=]                  test hook: the push queue and its states
POST /_pushes/{portal_code}/replay            test hook: send the last push again, {"fresh"}

On first start the portal holds two online dossiers per province (seeded, deterministic;
`--seed-dossiers N` per province, 0 for none); those are for the pull handover. Each dossier
filed through the API is also pushed to its province (push.py), signed; the handover stays as
the catch-up path.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sqlite3
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

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
from national.public_service_portal.push import SCHEMA as PUSH_SCHEMA
from national.public_service_portal.push import Pusher

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
# The seeded online dossiers: procedures of the national catalogue, filed at an agency of
# each province numbered as the demo province's are (61: its first commune, 14: Sở Xây
# dựng), with the papers the procedure asks for, so that `make run` takes them in.
PROCEDURES: tuple[tuple[str, str, int, tuple[tuple[str, str, int, int], ...]], ...] = (
    ("1.001193", "Thủ tục đăng ký khai sinh", 61,
     (("TK", "Tờ khai đăng ký khai sinh", 1, 0), ("GCS", "Giấy chứng sinh", 1, 0))),
    ("1.004873", "Thủ tục cấp Giấy xác nhận tình trạng hôn nhân", 61,
     (("TK", "Tờ khai cấp Giấy xác nhận tình trạng hôn nhân", 1, 0),)),
    ("1.013236", "Cấp giấy phép xây dựng mới công trình cấp đặc biệt, cấp I, cấp II", 14,
     (("DON", "Đơn đề nghị cấp giấy phép xây dựng", 1, 0),
      ("DAT", "Giấy tờ hợp pháp về đất đai", 0, 1),
      ("QD", "Quyết định phê duyệt dự án", 0, 1),
      ("BV", "Bản vẽ thiết kế xây dựng", 2, 0))),
)  # fmt: skip
PROCEDURE_CODE = re.compile(r"\d\.\d{6}")
PROVINCE_CODE = re.compile(r"[A-Z]\d{2}")
MAX_PAPERS = 50
SCHEMA = """
CREATE TABLE IF NOT EXISTS dossiers (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, portal_code TEXT UNIQUE, receipt_code TEXT UNIQUE,
    agency_code TEXT NOT NULL, procedure_code TEXT NOT NULL, procedure_name TEXT,
    applicant TEXT, submitted_at TEXT, handed_over_at TEXT,
    status INTEGER, status_updated_at TEXT, papers TEXT);
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


def _papers(value: Any) -> list[dict[str, Any]]:
    """The papers filed online (thành phần hồ sơ): code, name, electronic originals and
    copies, the uploaded file's SHA-256."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_PAPERS:
        raise invalid("papers", f"Danh sách giấy tờ không hợp lệ (tối đa {MAX_PAPERS})")
    out = []
    for i, p in enumerate(value):
        where = f"papers[{i}]"
        if not isinstance(p, dict):
            raise invalid(where, "Giấy tờ không hợp lệ")
        paper: dict[str, Any] = {}
        for key, limit in (("paper_code", 40), ("name", 500), ("sha256", 64)):
            v = p.get(key, "")
            if not isinstance(v, str) or len(v) > limit:
                raise invalid(f"{where}.{key}", "Thông tin giấy tờ không hợp lệ")
            paper[key] = v
        for key in ("originals", "copies"):
            n = p.get(key, 0)
            if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 100:
                raise invalid(f"{where}.{key}", "Số bản phải từ 0 đến 100")
            paper[key] = n
        out.append(paper)
    return out


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
        "papers": json.loads(row["papers"]) if row["papers"] else [],
    }
    if history is not None:
        out["history"] = [
            {"status": h["status"], "updated_at": h["updated_at"], "reason": h["reason"]}
            for h in history
        ]
    return out


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seed-dossiers",
        type=int,
        default=2,
        metavar="N",
        help="online dossiers per province waiting on first start (default 2; tests: 0)",
    )


def seed_dossiers(db: sqlite3.Connection, seed: int, per_province: int = 2) -> None:
    if per_province <= 0:
        return
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
        for code, name, dept, papers in rng.sample(PROCEDURES, min(per_province, len(PROCEDURES))):
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
                " applicant, submitted_at, status, papers) VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
                (
                    f"DVCQG-{day:%y%m%d}-{n:06d}",
                    f"000.00.{dept:02d}.{suffix}",
                    code,
                    name,
                    json.dumps(applicant, ensure_ascii=False),
                    f"{day.isoformat()}T08:{n % 60:02d}:00.000+07:00",
                    json.dumps(
                        [
                            {"paper_code": c, "name": t, "originals": o, "copies": k}
                            for c, t, o, k in papers
                        ],
                        ensure_ascii=False,
                    ),
                ),
            )


def _province(agency_code: str) -> str:
    return agency_code.rsplit(".", 1)[-1]


def create_app(config: MockConfig) -> Starlette:
    db = open_db(config.db_path, SCHEMA + PUSH_SCHEMA)
    if "papers" not in {r["name"] for r in db.execute("PRAGMA table_info(dossiers)")}:
        db.execute("ALTER TABLE dossiers ADD COLUMN papers TEXT")  # a file of an older mock
    seed_dossiers(db, config.seed, int(config.options.get("seed_dossiers", 2)))
    app_ref: list[Starlette] = []

    def dossier_of(code: str) -> dict[str, Any] | None:
        row = db.execute("SELECT * FROM dossiers WHERE portal_code = ?", (code,)).fetchone()
        return None if row is None else _public(row)

    def hand_over(portal_code: str, receipt: str) -> sqlite3.Row:
        """The province took the dossier over under `receipt` (ack, push answer or its first
        status); idempotent, ApiError 409 for another receipt code."""
        row = by_code(portal_code)
        if row["handed_over_at"] is not None:
            if row["receipt_code"] != receipt:
                raise conflict("ALREADY_HANDED_OVER", "Hồ sơ đã được tiếp nhận với mã khác")
            return row
        if row["status"] == 3:
            raise conflict("REFUSED", "Hồ sơ đã bị từ chối tiếp nhận")
        other = db.execute("SELECT 1 FROM dossiers WHERE receipt_code = ?", (receipt,)).fetchone()
        if other is not None:
            raise conflict("RECEIPT_CODE_IN_USE", "Mã hồ sơ đã được dùng cho hồ sơ khác")
        db.execute(
            "UPDATE dossiers SET receipt_code = ?, handed_over_at = ? WHERE seq = ?",
            (receipt, now(), row["seq"]),
        )
        return by_code(receipt)

    def refuse_dossier(portal_code: str, reason: str) -> sqlite3.Row:
        """The province refused the dossier: status 3 with its reason (idempotent)."""
        row = by_code(portal_code)
        if row["handed_over_at"] is not None:
            raise conflict("ALREADY_HANDED_OVER", "Hồ sơ đã được tiếp nhận")
        if row["status"] == 3:
            return row
        stamp = now()
        db.execute(
            "INSERT INTO status_log (dossier_seq, status, updated_at, reason, received_at)"
            " VALUES (?, 3, ?, ?, ?)",
            (row["seq"], stamp, reason, stamp),
        )
        db.execute(
            "UPDATE dossiers SET status = 3, status_updated_at = ? WHERE seq = ?",
            (stamp, row["seq"]),
        )
        return by_code(portal_code)

    pusher = Pusher(
        db,
        dossier_of=dossier_of,
        hand_over=hand_over,
        refuse=refuse_dossier,
        is_down=lambda: bool(app_ref and app_ref[0].state.mock.faults.faults.down),
    )

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
        papers = _papers(body.get("papers"))
        name = body.get("procedure_name") if isinstance(body.get("procedure_name"), str) else None
        stamp = now()
        cur = db.execute(
            "INSERT INTO dossiers (agency_code, procedure_code, procedure_name, applicant,"
            " submitted_at, status, papers) VALUES (?, ?, ?, ?, ?, 1, ?)",
            (
                agency,
                procedure,
                name,
                json.dumps(applicant, ensure_ascii=False),
                stamp,
                json.dumps(papers, ensure_ascii=False),
            ),
        )
        portal_code = f"DVCQG-{datetime.now(UTC):%y%m%d}-{cur.lastrowid:06d}"
        db.execute(
            "UPDATE dossiers SET portal_code = ? WHERE seq = ?", (portal_code, cur.lastrowid)
        )
        pusher.enqueue(portal_code, _province(agency))
        return JSONResponse(_public(by_code(portal_code)), 201)

    async def handover(request: Request) -> JSONResponse:
        q = request.query_params
        raw_limit = q.get("limit", "20")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 100:
            raise invalid("limit", "Tham số limit phải từ 1 đến 100")
        if q.get("agency_code"):
            where, arg = "agency_code = ?", q["agency_code"]
        elif q.get("province_code") and PROVINCE_CODE.fullmatch(q["province_code"]):
            where, arg = "agency_code LIKE ?", f"%.{q['province_code']}"
        else:
            raise invalid("agency_code", "Cần agency_code hoặc province_code (ví dụ H27)")
        rows = db.execute(
            f"SELECT * FROM dossiers WHERE {where} AND portal_code IS NOT NULL "
            "AND handed_over_at IS NULL AND status IS NOT 3 ORDER BY seq LIMIT ?",
            (arg, int(raw_limit)),
        ).fetchall()
        return JSONResponse({"dossiers": [_public(r) for r in rows]})

    async def ack(request: Request) -> JSONResponse:
        row = by_code(request.path_params["portal_code"])
        body = await read_json(request)
        receipt = _str(body, "receipt_code", "Thiếu mã hồ sơ (số biên nhận) của tỉnh", 64)
        already = row["handed_over_at"] is not None
        row = hand_over(row["portal_code"], receipt)
        return JSONResponse({**_public(row), "already_acked": already})

    async def refuse(request: Request) -> JSONResponse:
        row = by_code(request.path_params["portal_code"])
        body = await read_json(request)
        reason = _str(body, "reason", "Thiếu lý do từ chối tiếp nhận", 2000)
        return JSONResponse(_public(refuse_dossier(row["portal_code"], reason)))

    async def subscribe(request: Request) -> JSONResponse:
        province = request.path_params["province_code"]
        if not PROVINCE_CODE.fullmatch(province):
            raise invalid("province_code", "Mã tỉnh không hợp lệ (ví dụ H27)")
        body = await read_json(request)
        url = _str(body, "url", "Thiếu địa chỉ nhận hồ sơ của tỉnh", 500)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise invalid("url", "Địa chỉ nhận hồ sơ phải là URL http(s)")
        secret = _str(body, "secret", "Thiếu khóa ký (16 đến 200 ký tự)", 200)
        if len(secret) < 16:
            raise invalid("secret", "Khóa ký phải có ít nhất 16 ký tự")
        pusher.subscribe(province, url, secret, now())
        return JSONResponse({"province_code": province, "url": url})

    async def get_subscription(request: Request) -> JSONResponse:
        row = pusher.subscription(request.path_params["province_code"])
        if row is None:
            raise not_found("SUBSCRIPTION_NOT_FOUND", "Tỉnh chưa đăng ký nhận hồ sơ")
        return JSONResponse(
            {
                "province_code": row["province_code"],
                "url": row["url"],
                "updated_at": row["updated_at"],
            }
        )

    async def list_pushes(request: Request) -> JSONResponse:
        return JSONResponse({"pushes": pusher.listing(request.query_params.get("portal_code"))})

    async def replay_push(request: Request) -> JSONResponse:
        raw = await request.body()
        fresh = bool(raw and json.loads(raw).get("fresh"))
        return JSONResponse(await pusher.replay(request.path_params["portal_code"], fresh))

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
        portal_code = body.get("portal_code")
        if row is None and isinstance(portal_code, str) and portal_code:
            # An online dossier whose first status comes before the push's answer or the
            # ack: the status names the portal's code, and takes it over.
            row = hand_over(by_code(portal_code)["portal_code"], receipt)
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

    async def push_forever(app: Starlette) -> None:
        app_ref.append(app)
        await pusher.run()

    return build_app(
        config,
        [
            Route("/api/v1/dossiers", submit, methods=["POST"]),
            Route("/api/v1/handover", handover, methods=["GET"]),
            Route("/api/v1/handover/{portal_code}/ack", ack, methods=["POST"]),
            Route("/api/v1/handover/{portal_code}/refuse", refuse, methods=["POST"]),
            Route("/api/v1/subscriptions/{province_code}", subscribe, methods=["PUT"]),
            Route("/api/v1/subscriptions/{province_code}", get_subscription, methods=["GET"]),
            Route("/_pushes", list_pushes, methods=["GET"]),
            Route("/_pushes/{portal_code}/replay", replay_push, methods=["POST"]),
            Route("/api/v1/statuses", status, methods=["POST"]),
            Route("/api/v1/dossiers/{code}", get_dossier, methods=["GET"]),
        ],
        on_shutdown=db.close,
        background=push_forever,
    )
