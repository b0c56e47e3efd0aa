"""The demo province: agencies with identifier codes (today's two-level model), a few dozen
officials with roles, and client systems. Idempotent: what exists is left alone.

Every demo official's password is DEMO_PASSWORD (one argon2id hash computed once and shared:
demo data only). Demo client secrets are derived from the client id and written, with the
password, to <data_dir>/identity-demo.json (mode 0600).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lgsp.api.identity.v1 import identity_pb2 as pb
from services.identity.domain import security
from services.identity.domain.access import REALM, SYSTEM
from services.identity.domain.directory import fold
from services.identity.domain.model import AgencyLevel

if TYPE_CHECKING:
    from services.identity.bootstrap import Identity

DEMO_PASSWORD = "LgspDemo@2025"
PROVINCE = "000.00.00.H30"
DOMAIN = "hatinh.gov.vn"

# (code, name, short name, level, parent, mail subdomain)
AGENCIES: list[tuple[str, str, str, AgencyLevel, str | None, str]] = [
    (PROVINCE, "Ủy ban nhân dân tỉnh Hà Tĩnh", "UBND", AgencyLevel.PROVINCE, None, ""),
    (
        "000.00.01.H30",
        "Văn phòng Ủy ban nhân dân tỉnh",
        "VP",
        AgencyLevel.DEPARTMENT,
        PROVINCE,
        "vpubnd",
    ),
    ("000.00.02.H30", "Sở Nội vụ", "SNV", AgencyLevel.DEPARTMENT, PROVINCE, "snv"),
    ("000.00.03.H30", "Sở Tài chính", "STC", AgencyLevel.DEPARTMENT, PROVINCE, "stc"),
    ("000.00.12.H30", "Sở Tư pháp", "STP", AgencyLevel.DEPARTMENT, PROVINCE, "stp"),
    ("000.00.14.H30", "Sở Xây dựng", "SXD", AgencyLevel.DEPARTMENT, PROVINCE, "sxd"),
    ("000.00.17.H30", "Sở Y tế", "SYT", AgencyLevel.DEPARTMENT, PROVINCE, "syt"),
    (
        "000.00.20.H30",
        "Trung tâm Phục vụ hành chính công tỉnh",
        "TTPVHCC",
        AgencyLevel.DEPARTMENT,
        PROVINCE,
        "hcc",
    ),
    ("000.01.12.H30", "Văn phòng Sở Tư pháp", "VPSTP", AgencyLevel.UNIT, "000.00.12.H30", ""),
    ("000.02.12.H30", "Phòng Hành chính tư pháp", "HCTP", AgencyLevel.UNIT, "000.00.12.H30", ""),
    ("000.01.17.H30", "Phòng Nghiệp vụ Y", "NVY", AgencyLevel.UNIT, "000.00.17.H30", ""),
    (
        "000.00.61.H30",
        "Ủy ban nhân dân phường Thành Sen",
        "UBND",
        AgencyLevel.COMMUNE,
        PROVINCE,
        "thanhsen",
    ),
    (
        "000.00.62.H30",
        "Ủy ban nhân dân phường Trần Phú",
        "UBND",
        AgencyLevel.COMMUNE,
        PROVINCE,
        "tranphu",
    ),
    (
        "000.00.63.H30",
        "Ủy ban nhân dân xã Thạch Hà",
        "UBND",
        AgencyLevel.COMMUNE,
        PROVINCE,
        "thachha",
    ),
    (
        "000.00.64.H30",
        "Ủy ban nhân dân xã Cẩm Xuyên",
        "UBND",
        AgencyLevel.COMMUNE,
        PROVINCE,
        "camxuyen",
    ),
    (
        "000.01.61.H30",
        "Bộ phận Một cửa phường Thành Sen",
        "BPMC",
        AgencyLevel.UNIT,
        "000.00.61.H30",
        "",
    ),
    (
        "000.02.61.H30",
        "Phòng Văn hóa - Xã hội phường Thành Sen",
        "VHXH",
        AgencyLevel.UNIT,
        "000.00.61.H30",
        "",
    ),
]

FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Phan", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ"]
MIDDLE = ["Văn", "Thị", "Đức", "Minh", "Thu", "Hữu", "Ngọc", "Thanh"]
GIVEN = [
    "An",
    "Bình",
    "Chi",
    "Dũng",
    "Hà",
    "Hạnh",
    "Hùng",
    "Lan",
    "Long",
    "Mai",
    "Nam",
    "Phương",
    "Quân",
    "Sơn",
    "Thảo",
    "Trang",
    "Tuấn",
    "Yến",
    "Đức",
    "Giang",
    "Hiếu",
]

# Staff per kind of agency: (position, roles)
DEPARTMENT_STAFF = [
    ("Giám đốc", ["leader"]),
    ("Phó Giám đốc", ["leader"]),
    ("Văn thư", ["clerk"]),
    ("Chuyên viên", ["specialist"]),
]
COMMUNE_STAFF = [
    ("Chủ tịch", ["leader"]),
    ("Văn thư", ["clerk"]),
    ("Công chức một cửa", ["one_stop_officer"]),
]

# client_id, name, owner, roles of its service account (None: public web client)
CLIENTS: list[tuple[str, str, str, list[str] | None]] = [
    ("documents", "Dịch vụ quản lý văn bản", PROVINCE, ["clerk", "specialist"]),
    ("dossiers", "Dịch vụ hồ sơ một cửa", PROVINCE, ["one_stop_officer"]),
    ("lgsp-gateway", "Cổng kết nối LGSP", PROVINCE, ["operator"]),
    ("motcua-thanhsen", "Hệ thống một cửa phường Thành Sen", "000.00.61.H30", ["one_stop_officer"]),
    ("dvc-hatinh", "Cổng dịch vụ công tỉnh Hà Tĩnh", "000.00.20.H30", ["one_stop_officer"]),
    ("lgsp-web", "Ứng dụng web LGSP", PROVINCE, None),
]


def demo_secret(client_id: str) -> str:
    """Deterministic demo secret, so re-seeding and the written file agree."""
    return hashlib.sha256(f"lgsp-demo:{client_id}".encode()).hexdigest()[:32]


def _username(given: str, family: str, middle: str, short: str, taken: set[str]) -> str:
    base = f"{fold(given)}{fold(family)[0]}{fold(middle)[0]}.{fold(short)}".replace(" ", "")
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}{n}"
    taken.add(name)
    return name


def officials() -> list[dict[str, Any]]:
    """The demo officials, generated deterministically."""
    out: list[dict[str, Any]] = []
    taken: set[str] = set()
    i = 0
    for code, _name, short, level, _, sub in AGENCIES:
        if level == AgencyLevel.PROVINCE:
            staff = [
                ("Chủ tịch", ["leader"]),
                ("Văn thư", ["clerk"]),
                ("Quản trị hệ thống", ["admin", "agency_admin"]),
                ("Cán bộ vận hành", ["operator"]),
                ("Thanh tra viên", ["auditor"]),
            ]
        elif level == AgencyLevel.COMMUNE:
            staff = COMMUNE_STAFF
        elif level == AgencyLevel.DEPARTMENT:
            staff = (
                DEPARTMENT_STAFF
                if code != "000.00.20.H30"
                else [
                    ("Giám đốc", ["leader"]),
                    ("Công chức một cửa", ["one_stop_officer"]),
                    ("Công chức một cửa", ["one_stop_officer"]),
                ]
            )
        else:
            staff = [("Trưởng phòng", ["leader"]), ("Chuyên viên", ["specialist"])]
        domain = f"{sub}.{DOMAIN}" if sub else DOMAIN
        for position, roles in staff:
            family, middle, given = FAMILY[i % 11], MIDDLE[(i * 3) % 8], GIVEN[(i * 7) % 21]
            i += 1
            username = _username(
                given, family, middle, short if short != "UBND" else sub or "ubnd", taken
            )
            out.append(
                {
                    "username": username,
                    "display_name": f"{family} {middle} {given}",
                    "email": f"{username.split('.')[0]}@{domain}",
                    "agency_code": code,
                    "position": position,
                    "roles": roles,
                }
            )
    return out


def seed_demo(
    identity: Identity, data_dir: str | None = None, only_if_empty: bool = False
) -> dict[str, Any]:
    """Create what is missing of the demo province; returns counts of what was created."""
    with identity.storage.read() as r:
        if only_if_empty and r.agencies.count():
            return {"skipped": "directory not empty"}
        have_agencies = r.agencies.codes()
        have_users = r.accounts.usernames(REALM)
        have_clients = r.clients.ids(REALM)
    created = {"agencies": 0, "users": 0, "clients": 0}
    for code, name, short, level, parent, sub in AGENCIES:
        if code in have_agencies:
            continue
        identity.agencies.create(
            SYSTEM,
            pb.Agency(
                code=code,
                name=name,
                short_name=short,
                level=pb.AgencyLevel.ValueType(int(level)),
                parent_code=parent or "",
                mail_domain=f"{sub}.{DOMAIN}" if sub else (DOMAIN if parent is None else ""),
                place_name="Hà Tĩnh",
            ),
        )
        created["agencies"] += 1
    shared_hash = security.hash_password(DEMO_PASSWORD)
    for o in officials():
        if o["username"] in have_users:
            continue
        identity.users.create_with_hash(
            SYSTEM,
            o,
            shared_hash,
            {role: role in ("agency_admin", "admin", "auditor", "operator") for role in o["roles"]},
        )
        created["users"] += 1
    secrets_out: dict[str, str] = {}
    for client_id, name, owner, roles in CLIENTS:
        if roles is not None:
            secrets_out[client_id] = demo_secret(client_id)
        if client_id in have_clients:
            continue
        if roles is None:
            identity.clients.create(
                SYSTEM,
                pb.ClientSystem(client_id=client_id, display_name=name, owner_agency_code=owner),
                secret=None,
                redirect_uris=["http://127.0.0.1:8100/callback", "http://localhost:8100/callback"],
                service_accounts=False,
            )
        else:
            identity.clients.create(
                SYSTEM,
                pb.ClientSystem(client_id=client_id, display_name=name, owner_agency_code=owner),
                secret=secrets_out[client_id],
                roles=roles,
            )
        created["clients"] += 1
    if data_dir:
        path = Path(data_dir) / "identity-demo.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"password": DEMO_PASSWORD, "client_secrets": secrets_out}, fh, indent=2)
    return created
