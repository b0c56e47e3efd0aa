"""The demo province: agencies with identifier codes (today's two-level model), a few dozen
officials with roles, and client systems. Idempotent: what exists is left alone.

Seeded only when asked (identity.demo_seed, `make run`, `lgsp admin seed-demo`), and only on a
loopback host unless identity.demo_seed_allow_remote. Every official gets a random password and
every client system a random secret, written to <data_dir>/identity-demo.json (mode 0600) —
the only place they exist: nothing about them can be derived from this source. Tests and tools
read that file (`read_demo`).
"""

from __future__ import annotations

import ipaddress
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from lgsp.api.identity.v1 import identity_pb2 as pb
from lgsp.national_directory import national_directory
from services.identity.domain import security
from services.identity.domain.access import REALM, SYSTEM
from services.identity.domain.directory import fold
from services.identity.domain.model import AgencyLevel

if TYPE_CHECKING:
    from services.identity.bootstrap import Identity

DEMO_FILE = "identity-demo.json"
# The demo province's tree comes from the platform's one agency directory
# (lgsp/national_directory.json), which the national mocks read too.
_DEMO = national_directory().demo
PROVINCE = _DEMO[0].code
DOMAIN = _DEMO[0].mail_domain
PLACE = _DEMO[0].place_name

# (code, name, short name, level, parent, mail subdomain)
AGENCIES: list[tuple[str, str, str, AgencyLevel, str | None, str]] = [
    (
        a.code,
        a.name,
        a.short_name,
        AgencyLevel[a.level.upper()],
        a.parent_code or None,
        a.mail_domain.removesuffix(DOMAIN).rstrip("."),
    )
    for a in _DEMO
]
# The one-stop centre: its staff are one-stop officers rather than a department's.
ONE_STOP_CENTRE = next(a.code for a in _DEMO if a.short_name == "TTPVHCC")

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
    # Reads the agency tree (a role held in an agency reads what the agencies below issued).
    ("search", "Dịch vụ tra cứu văn bản", PROVINCE, ["specialist"]),
    # Reads the agency tree (mail domains) and checks officials' SMTP logins (password grant).
    ("mail", "Dịch vụ thư điện tử công vụ", PROVINCE, []),
    ("lgsp-gateway", "Cổng kết nối LGSP", PROVINCE, ["operator"]),
    # Reads the province's figures for the operator console (documents, dossiers).
    ("lgsp-console", "Bảng điều khiển vận hành LGSP", PROVINCE, ["auditor"]),
    ("motcua-thanhsen", "Hệ thống một cửa phường Thành Sen", "000.00.61.H27", ["one_stop_officer"]),
    ("dvc-hatinh", "Cổng dịch vụ công tỉnh Hà Tĩnh", "000.00.20.H27", ["one_stop_officer"]),
    ("lgsp-web", "Ứng dụng web LGSP", PROVINCE, None),
    # The operator console signs operators in (authorization code + PKCE; docs/console.md).
    ("console", "Bảng điều khiển vận hành LGSP", PROVINCE, None),
]
# Clients whose password grant takes officials' app passwords (mail clients cannot ask for a
# one-time code; docs/identity.md, "App passwords").
APP_PASSWORD_CLIENTS = frozenset({"mail"})


@dataclass
class DemoCredentials:
    """What <data_dir>/identity-demo.json holds: each official's password and each client
    system's secret (random, made when they were seeded)."""

    passwords: dict[str, str] = field(default_factory=dict)  # username -> password
    client_secrets: dict[str, str] = field(default_factory=dict)  # client id -> secret

    def password(self, username: str) -> str:
        return self.passwords[username]

    def secret(self, client_id: str) -> str:
        return self.client_secrets[client_id]


def read_demo(data_dir: str | Path) -> DemoCredentials:
    """The demo credentials seed_demo wrote to data_dir (empty if it wrote none)."""
    try:
        raw = json.loads((Path(data_dir) / DEMO_FILE).read_text())
    except (OSError, ValueError):
        return DemoCredentials()
    return DemoCredentials(
        passwords=dict(raw.get("passwords", {})),
        client_secrets=dict(raw.get("client_secrets", {})),
    )


def _write_demo(data_dir: str | Path, demo: DemoCredentials) -> Path:
    path = Path(data_dir) / DEMO_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when the file was there with looser permissions
    with os.fdopen(fd, "w") as fh:
        json.dump(
            {"passwords": demo.passwords, "client_secrets": demo.client_secrets},
            fh,
            indent=2,
            ensure_ascii=False,
        )
    return path


class RemoteSeedRefused(Exception):
    """The demo province (known accounts, secrets on disk) on a host others can reach."""


def check_may_seed(host: str, allow_remote: bool) -> None:
    """Demo data only on a loopback host (platform.host), unless explicitly allowed."""
    if allow_remote:
        return
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise RemoteSeedRefused(
            f"refusing to seed the demo province on platform.host = {host!r} (not loopback): "
            "its accounts would be reachable from the network. Set [identity] "
            "demo_seed_allow_remote = true to do it anyway."
        )


def _redirect_uris(client_id: str, console_url: str) -> list[str]:
    """The browser clients' callbacks, on the configured console address (platform.host and
    console.port), and on localhost too when that is loopback."""
    path = "auth/callback" if client_id == "console" else "callback"
    uris = [console_url + path]
    parts = urlsplit(console_url)
    if parts.hostname == "127.0.0.1":
        uris.append(f"{parts.scheme}://localhost:{parts.port}/{path}")
    return uris


def _new_password() -> str:
    # 16 random URL-safe characters, plus one of each class the password policy counts.
    return security.new_secret(12) + "Aa1!"


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
                if code != ONE_STOP_CENTRE
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
    identity: Identity,
    data_dir: str | Path | None,
    only_if_empty: bool = False,
    console_url: str = "http://127.0.0.1:8100/",
) -> dict[str, Any]:
    """Create what is missing of the demo province; returns counts of what was created.
    The new officials' passwords and clients' secrets are added to <data_dir>/DEMO_FILE.
    `console_url` (Settings.console_url) gives the console client its redirect URI."""
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
                place_name=PLACE,
            ),
        )
        created["agencies"] += 1
    demo = read_demo(data_dir) if data_dir else DemoCredentials()
    new = [o for o in officials() if o["username"] not in have_users]
    passwords = {o["username"]: _new_password() for o in new}
    with ThreadPoolExecutor(max(1, min(8, os.cpu_count() or 1))) as pool:  # argon2 frees the GIL
        hashes = list(pool.map(security.hash_password, passwords.values()))
    for o, pw_hash in zip(new, hashes, strict=True):
        identity.users.create_with_hash(
            SYSTEM,
            o,
            pw_hash,
            {role: role in ("agency_admin", "admin", "auditor", "operator") for role in o["roles"]},
        )
        created["users"] += 1
    demo.passwords.update(passwords)
    secrets_out: dict[str, str] = {}
    for client_id, name, owner, roles in CLIENTS:
        if client_id in have_clients:
            continue
        if roles is not None:
            secrets_out[client_id] = security.new_secret()
        if roles is None:
            identity.clients.create(
                SYSTEM,
                pb.ClientSystem(client_id=client_id, display_name=name, owner_agency_code=owner),
                secret=None,
                redirect_uris=_redirect_uris(client_id, console_url),
                service_accounts=False,
            )
        else:
            identity.clients.create(
                SYSTEM,
                pb.ClientSystem(
                    client_id=client_id,
                    display_name=name,
                    owner_agency_code=owner,
                    allow_app_passwords=client_id in APP_PASSWORD_CLIENTS,
                ),
                secret=secrets_out[client_id],
                roles=roles,
            )
        created["clients"] += 1
    demo.client_secrets.update(secrets_out)
    if data_dir and (passwords or secrets_out or (Path(data_dir) / DEMO_FILE).exists()):
        _write_demo(data_dir, demo)
    return created
