"""HTTP API of the document axis mock; mailboxes persist in <data_dir>/document_axis.db.

GET  /api/v1/agencies                                   the directory of mailboxes
PUT  /api/v1/agencies/{code}            {"name"}        open a mailbox (201, or 200 if open)
POST /api/v1/packages                   edXML document  deliver to every To/OrganId
POST /api/v1/statuses                   edXML status    deliver to the original sender
GET  /api/v1/agencies/{code}/packages?limit=N           pending packages with their bodies
POST /api/v1/mailboxes/packages  {"agencies", "limit"}  pending packages of many mailboxes
POST /api/v1/agencies/{code}/packages/{id}/ack          remove from pending (idempotent)
GET  /api/v1/packages/{id}/statuses                     statuses reported on a document

A package naming recipients the axis does not know reaches the known ones; the answer lists the
others under "undeliverable" (404 only when it reaches nobody). A document is idempotent by
(sender, DocumentId): re-sending the same bytes answers 200 with
the first package id; different bytes under the same id answer 409. A status is idempotent by
its bytes. Headers X-Sender-Code / X-Recipient-Codes (comma-separated), when given, must agree
with the edXML header.
"""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from lgsp.national_directory import national_directory
from national._common.app import MockConfig, build_app, read_json
from national._common.errors import ApiError, conflict, invalid, not_found
from national._common.store import open_db
from national.document_axis import edxml

MAX_PACKAGE_BYTES = 8 * 1024 * 1024
MAX_MAILBOXES = 1000  # of one multi-mailbox poll (a province's platform polls for all its own)
XML_TYPES = {"application/xml", "text/xml"}
MIME_TYPES = {"multipart/related", "multipart/mixed"}
SCHEMA = """
CREATE TABLE IF NOT EXISTS agencies (
    code TEXT PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS packages (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, message_id TEXT NOT NULL, sender TEXT NOT NULL,
    sha256 TEXT NOT NULL, body BLOB NOT NULL, created_at TEXT NOT NULL,
    status_code TEXT, original_package_id TEXT);
CREATE UNIQUE INDEX IF NOT EXISTS packages_by_message ON packages (kind, sender, message_id);
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, package_id TEXT NOT NULL, agency_code TEXT NOT NULL,
    acked_at TEXT, UNIQUE (package_id, agency_code));
CREATE INDEX IF NOT EXISTS pending ON deliveries (agency_code, acked_at, seq);
"""


def directory() -> list[tuple[str, str]]:
    """The mailboxes every axis starts with: the bodies of the platform's one agency directory
    still in being (ministries, the 34 provinces' people's committees, the demo province's
    agencies), so a code names the same agency here as in identity."""
    return [(e.code, e.name) for e in national_directory().mailboxes()]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


async def read_xml(request: Request) -> bytes:
    """The body, refused early when it is not XML or too large (never read past the limit).

    A MIME package (multipart/related: the XML part, files as parts) is kept with its
    Content-Type as a header block, so what recipients poll is a self-contained MIME message.
    """
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    if media not in XML_TYPES and media not in MIME_TYPES:
        raise ApiError(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            "Gói tin phải có Content-Type application/xml hoặc multipart/related",
            field="Content-Type",
        )
    declared = request.headers.get("content-length")
    too_large = ApiError(
        413,
        "PACKAGE_TOO_LARGE",
        f"Gói tin vượt quá kích thước cho phép ({MAX_PACKAGE_BYTES // (1024 * 1024)} MB)",
        field="body",
    )
    if declared and declared.isdigit() and int(declared) > MAX_PACKAGE_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_PACKAGE_BYTES:
                raise too_large
            chunks.append(chunk)
    except ClientDisconnect:
        raise ApiError(400, "INCOMPLETE_BODY", "Gói tin không đầy đủ", field="body") from None
    body = b"".join(chunks)
    if media in MIME_TYPES:
        if not content_type.isascii() or "\n" in content_type or "\r" in content_type:
            raise invalid("Content-Type", "Content-Type không hợp lệ")
        try:
            body.decode("utf-8")  # polled as JSON text: files must travel base64-encoded
        except UnicodeDecodeError:
            raise invalid(
                "body",
                "Gói tin MIME phải mã hóa tệp đính kèm bằng base64",
                "parts must use Content-Transfer-Encoding: base64",
            ) from None
        body = f"MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n\r\n".encode() + body
    return body


def bad_edxml(exc: edxml.EdxmlError) -> ApiError:
    return invalid(exc.field, "Gói tin edXML không hợp lệ", exc.reason, "INVALID_EDXML")


def create_app(config: MockConfig) -> Starlette:
    db = _open(config)

    def agency_exists(code: str) -> bool:
        return db.execute("SELECT 1 FROM agencies WHERE code = ?", (code,)).fetchone() is not None

    def require_agency(code: str) -> None:
        if not agency_exists(code):
            raise not_found("AGENCY_NOT_FOUND", f"Không tìm thấy đơn vị có mã định danh {code}")

    async def list_agencies(request: Request) -> JSONResponse:
        rows = db.execute("SELECT code, name FROM agencies ORDER BY code").fetchall()
        return JSONResponse({"agencies": [dict(r) for r in rows]})

    async def put_agency(request: Request) -> JSONResponse:
        code = request.path_params["code"]
        if not edxml.valid_agency_code(code):
            raise invalid("code", "Mã định danh đơn vị không hợp lệ", "dotted groups, ≤ 35 chars")
        body = await read_json(request)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise invalid("name", "Tên đơn vị không hợp lệ (1-255 ký tự)")
        cur = db.execute(
            "INSERT OR IGNORE INTO agencies (code, name, created_at) VALUES (?, ?, ?)",
            (code, name.strip(), now()),
        )
        return JSONResponse({"code": code, "name": name.strip()}, 201 if cur.rowcount else 200)

    async def send_package(request: Request) -> JSONResponse:
        body = await read_xml(request)
        try:
            root = edxml.parse(body)
            if edxml.kind_of(root) != "document":
                raise edxml.EdxmlError("MessageHeader", "a status goes to /api/v1/statuses")
            header = edxml.document_header(root)
        except edxml.EdxmlError as exc:
            raise bad_edxml(exc) from None
        sender_hdr = request.headers.get("x-sender-code")
        if sender_hdr and sender_hdr != header.sender:
            raise invalid("X-Sender-Code", "Mã đơn vị gửi không khớp với gói tin edXML")
        recipients_hdr = request.headers.get("x-recipient-codes")
        if recipients_hdr:
            listed = {c.strip() for c in recipients_hdr.split(",") if c.strip()}
            if listed != set(header.recipients):
                raise invalid(
                    "X-Recipient-Codes", "Danh sách đơn vị nhận không khớp với gói tin edXML"
                )
        require_agency(header.sender)
        # An unknown recipient fails only itself: the package reaches the others and the
        # answer lists the ones it could not reach ("undeliverable").
        unknown = [c for c in header.recipients if not agency_exists(c)]
        if len(unknown) == len(header.recipients):
            raise ApiError(
                404,
                "AGENCY_NOT_FOUND",
                f"Không tìm thấy đơn vị nhận có mã định danh {', '.join(unknown)}",
                field="To/OrganId",
            )
        known = [c for c in header.recipients if c not in unknown]
        digest = hashlib.sha256(body).hexdigest()
        existing = db.execute(
            "SELECT id, sha256 FROM packages "
            "WHERE kind = 'document' AND sender = ? AND message_id = ?",
            (header.sender, header.message_id),
        ).fetchone()
        if existing is not None:
            if existing["sha256"] != digest:
                raise conflict(
                    "DUPLICATE_MESSAGE_ID",
                    "Mã gói tin đã được dùng cho một gói tin khác của đơn vị gửi",
                )
            return JSONResponse(_sent(existing["id"], header, unknown, duplicate=True), 200)
        package_id = str(uuid.uuid4())
        with _tx(db):
            db.execute(
                "INSERT INTO packages (id, kind, message_id, sender, sha256, body, created_at) "
                "VALUES (?, 'document', ?, ?, ?, ?, ?)",
                (package_id, header.message_id, header.sender, digest, body, now()),
            )
            db.executemany(
                "INSERT INTO deliveries (package_id, agency_code) VALUES (?, ?)",
                [(package_id, code) for code in known],
            )
        return JSONResponse(_sent(package_id, header, unknown, duplicate=False), 201)

    async def send_status(request: Request) -> JSONResponse:
        body = await read_xml(request)
        try:
            root = edxml.parse(body)
            if edxml.kind_of(root) != "status":
                raise edxml.EdxmlError("Status", "a document goes to /api/v1/packages")
            st = edxml.status_header(root)
        except edxml.EdxmlError as exc:
            raise bad_edxml(exc) from None
        original = db.execute(
            "SELECT id FROM packages WHERE kind = 'document' AND sender = ? AND message_id = ?",
            (st.original_sender, st.original_message_id),
        ).fetchone()
        if original is None:
            raise not_found("MESSAGE_NOT_FOUND", "Không tìm thấy văn bản gốc của trạng thái")
        delivered = db.execute(
            "SELECT 1 FROM deliveries WHERE package_id = ? AND agency_code = ?",
            (original["id"], st.reporter),
        ).fetchone()
        if delivered is None:
            raise ApiError(
                403,
                "NOT_A_RECIPIENT",
                "Đơn vị báo trạng thái không phải đơn vị nhận văn bản",
                field="From/OrganId",
            )
        digest = hashlib.sha256(body).hexdigest()
        existing = db.execute(
            "SELECT id FROM packages WHERE kind = 'status' AND sender = ? AND message_id = ?",
            (st.reporter, digest),
        ).fetchone()
        result = {
            "status_code": st.status_code,
            "original_package_id": original["id"],
            "delivered_to": st.original_sender,
        }
        if existing is not None:
            return JSONResponse({"package_id": existing["id"], "duplicate": True, **result}, 200)
        package_id = str(uuid.uuid4())
        with _tx(db):
            db.execute(
                "INSERT INTO packages (id, kind, message_id, sender, sha256, body, created_at, "
                "status_code, original_package_id) VALUES (?, 'status', ?, ?, ?, ?, ?, ?, ?)",
                (
                    package_id,
                    digest,
                    st.reporter,
                    digest,
                    body,
                    now(),
                    st.status_code,
                    original["id"],
                ),
            )
            db.execute(
                "INSERT INTO deliveries (package_id, agency_code) VALUES (?, ?)",
                (package_id, st.original_sender),
            )
        return JSONResponse({"package_id": package_id, "duplicate": False, **result}, 201)

    async def poll(request: Request) -> JSONResponse:
        code = request.path_params["code"]
        require_agency(code)
        raw_limit = request.query_params.get("limit", "20")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 100:
            raise invalid("limit", "Tham số limit phải từ 1 đến 100")
        rows = db.execute(
            "SELECT p.id, p.kind, p.message_id, p.sender, p.sha256, p.body, p.created_at, "
            "p.status_code, p.original_package_id FROM deliveries d "
            "JOIN packages p ON p.id = d.package_id "
            "WHERE d.agency_code = ? AND d.acked_at IS NULL ORDER BY d.seq LIMIT ?",
            (code, int(raw_limit)),
        ).fetchall()
        return JSONResponse({"agency_code": code, "packages": [_pending(r) for r in rows]})

    async def poll_mailboxes(request: Request) -> JSONResponse:
        """One call for many mailboxes: what a provincial platform polls each round for all
        its agencies, instead of one call per agency. Oldest first across the mailboxes; each
        package names the mailbox it waits in. Codes without a mailbox come back in
        `unknown` (the caller may open them), never as an error for the others."""
        body = await read_json(request)
        codes = body.get("agencies")
        if (
            not isinstance(codes, list)
            or not 1 <= len(codes) <= MAX_MAILBOXES
            or not all(isinstance(c, str) and edxml.valid_agency_code(c) for c in codes)
        ):
            raise invalid(
                "agencies",
                f"Danh sách mã định danh đơn vị không hợp lệ (1-{MAX_MAILBOXES} mã)",
            )
        limit = body.get("limit", 20)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 100:
            raise invalid("limit", "Tham số limit phải từ 1 đến 100")
        wanted = list(dict.fromkeys(codes))
        marks = ",".join("?" * len(wanted))
        known = {
            r["code"]
            for r in db.execute(f"SELECT code FROM agencies WHERE code IN ({marks})", wanted)
        }
        rows = db.execute(
            "SELECT d.agency_code, p.id, p.kind, p.message_id, p.sender, p.sha256, p.body, "
            "p.created_at, p.status_code, p.original_package_id FROM deliveries d "
            "JOIN packages p ON p.id = d.package_id "
            f"WHERE d.agency_code IN ({marks}) AND d.acked_at IS NULL ORDER BY d.seq LIMIT ?",
            (*wanted, limit),
        ).fetchall()
        return JSONResponse(
            {
                "packages": [{"agency_code": r["agency_code"], **_pending(r)} for r in rows],
                "unknown": [c for c in wanted if c not in known],
            }
        )

    async def ack(request: Request) -> JSONResponse:
        code, package_id = request.path_params["code"], request.path_params["package_id"]
        row = db.execute(
            "SELECT acked_at FROM deliveries WHERE package_id = ? AND agency_code = ?",
            (package_id, code),
        ).fetchone()
        if row is None:
            raise not_found("PACKAGE_NOT_FOUND", "Không tìm thấy gói tin trong hộp thư của đơn vị")
        if row["acked_at"] is not None:
            return JSONResponse(
                {"package_id": package_id, "acked_at": row["acked_at"], "already_acked": True}
            )
        stamp = now()
        db.execute(
            "UPDATE deliveries SET acked_at = ? WHERE package_id = ? AND agency_code = ?",
            (stamp, package_id, code),
        )
        return JSONResponse({"package_id": package_id, "acked_at": stamp, "already_acked": False})

    async def statuses(request: Request) -> JSONResponse:
        package_id = request.path_params["package_id"]
        if db.execute("SELECT 1 FROM packages WHERE id = ?", (package_id,)).fetchone() is None:
            raise not_found("PACKAGE_NOT_FOUND", "Không tìm thấy gói tin")
        rows = db.execute(
            "SELECT id, sender, status_code, created_at FROM packages "
            "WHERE kind = 'status' AND original_package_id = ? ORDER BY created_at",
            (package_id,),
        ).fetchall()
        return JSONResponse(
            {
                "package_id": package_id,
                "statuses": [
                    {
                        "package_id": r["id"],
                        "reporter": r["sender"],
                        "status_code": r["status_code"],
                        "received_at": r["created_at"],
                    }
                    for r in rows
                ],
            }
        )

    return build_app(
        config,
        [
            Route("/api/v1/agencies", list_agencies, methods=["GET"]),
            Route("/api/v1/agencies/{code}", put_agency, methods=["PUT"]),
            Route("/api/v1/packages", send_package, methods=["POST"]),
            Route("/api/v1/statuses", send_status, methods=["POST"]),
            Route("/api/v1/agencies/{code}/packages", poll, methods=["GET"]),
            Route("/api/v1/mailboxes/packages", poll_mailboxes, methods=["POST"]),
            Route("/api/v1/agencies/{code}/packages/{package_id}/ack", ack, methods=["POST"]),
            Route("/api/v1/packages/{package_id}/statuses", statuses, methods=["GET"]),
        ],
        on_shutdown=db.close,
    )


def _sent(
    package_id: str, header: edxml.DocumentHeader, unknown: list[str], *, duplicate: bool
) -> dict[str, object]:
    return {
        "package_id": package_id,
        "message_id": header.message_id,
        "sender": header.sender,
        "recipients": list(header.recipients),
        "undeliverable": unknown,
        "duplicate": duplicate,
    }


def _pending(r: sqlite3.Row) -> dict[str, object]:
    item: dict[str, object] = {
        "package_id": r["id"],
        "kind": r["kind"],
        "sender": r["sender"],
        "message_id": r["message_id"] if r["kind"] == "document" else None,
        "sha256": r["sha256"],
        "received_at": r["created_at"],
        "body": bytes(r["body"]).decode("utf-8"),
    }
    if r["kind"] == "status":
        item["status_code"] = r["status_code"]
        item["original_package_id"] = r["original_package_id"]
    return item


def _open(config: MockConfig) -> sqlite3.Connection:
    db = open_db(config.db_path, SCHEMA)
    stamp = now()
    # The directory's names win over what an older data directory holds: a code names the
    # agency the platform's one directory says, here as in identity.
    db.executemany(
        "INSERT INTO agencies (code, name, created_at) VALUES (?, ?, ?) "
        "ON CONFLICT (code) DO UPDATE SET name = excluded.name",
        [(code, name, stamp) for code, name in directory()],
    )
    return db


class _tx:
    """BEGIN IMMEDIATE … COMMIT on an autocommit connection (ROLLBACK on error)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
