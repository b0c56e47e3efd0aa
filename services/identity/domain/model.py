"""The identity domain: what a valid agency, account, role, client and password look like.

No gRPC, SQL or HTTP here. Every check raises `Invalid(field, description)` (domain/errors.py);
the edges turn it into INVALID_ARGUMENT (gRPC) or 400 (HTTP) naming the field, before anything
is stored.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import IntEnum

from lgsp.agency_code import MAX_LENGTH, agency_code_problem
from services.identity.domain.errors import Invalid

__all__ = [
    "AGENCY_CODE_MAX",
    "LEVEL_NAMES",
    "ROLE_NAMES",
    "AgencyLevel",
    "Invalid",
    "Status",
    "check_agency_code",
    "check_app_password_name",
    "check_client_id",
    "check_email",
    "check_mail_domain",
    "check_name",
    "check_password",
    "check_phone",
    "check_redirect_uri",
    "check_username",
    "role_name",
]


class Status(IntEnum):
    """Account / agency / client status; numbers match the proto enums."""

    ACTIVE = 1
    DISABLED = 2
    LOCKED = 3  # accounts only


class AgencyLevel(IntEnum):
    """Numbers match lgsp.api.identity.v1.AgencyLevel."""

    CENTRAL = 1
    PROVINCE = 2
    DEPARTMENT = 3
    DISTRICT = 4  # abolished 1 July 2025, kept so older records stay readable
    COMMUNE = 5
    UNIT = 6


LEVEL_NAMES = {lvl: lvl.name.lower() for lvl in AgencyLevel}

# Role names as they appear in tokens, indexed by the proto Role enum number. The token names
# are the contract with lgsp.auth (docs/identity.md); "admin" is ROLE_PLATFORM_ADMIN.
ROLE_NAMES: dict[int, str] = {
    1: "clerk",
    2: "specialist",
    3: "leader",
    4: "one_stop_officer",
    5: "agency_admin",
    6: "admin",
    7: "operator",
    8: "auditor",
    9: "citizen",
}
ROLE_NUMBERS = {name: num for num, name in ROLE_NAMES.items()}
ROLE_DESCRIPTIONS = {
    "clerk": "Văn thư",
    "specialist": "Chuyên viên",
    "leader": "Lãnh đạo",
    "one_stop_officer": "Cán bộ một cửa",
    "agency_admin": "Quản trị cơ quan",
    "admin": "Quản trị hệ thống",
    "operator": "Vận hành",
    "auditor": "Kiểm tra, giám sát",
    "citizen": "Công dân",
}


def role_name(number: int) -> str:
    try:
        return ROLE_NAMES[number]
    except KeyError:
        raise Invalid("role", f"unknown role {number}") from None


AGENCY_CODE_MAX = MAX_LENGTH


def check_agency_code(code: str, field: str = "code") -> str:
    """The platform's one rule for mã định danh (lgsp.agency_code), as a domain error."""
    if not code:
        raise Invalid(field, "is required")
    problem = agency_code_problem(code)
    if problem is not None:
        raise Invalid(field, problem)
    return code


def has_control(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in text)


def check_name(text: str, field: str, max_len: int = 200, required: bool = True) -> str:
    """A human name or title: NFC-normalised, no control characters, bounded length."""
    text = unicodedata.normalize("NFC", text.strip())
    if not text:
        if required:
            raise Invalid(field, "is required")
        return text
    if len(text) > max_len:
        raise Invalid(field, f"at most {max_len} characters, got {len(text)}")
    if has_control(text):
        raise Invalid(field, "must not contain control characters")
    return text


APP_PASSWORD_NAME_MAX = 100


def check_app_password_name(name: str, field: str = "name") -> str:
    """An app password's label, e.g. "Thunderbird ở cơ quan"."""
    return check_name(name, field, APP_PASSWORD_NAME_MAX)


# Usernames are ASCII so they can be typed on any keyboard and used in mail local parts.
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


def check_username(username: str, field: str = "username") -> str:
    username = username.strip().lower()
    if not username:
        raise Invalid(field, "is required")
    if not _USERNAME.match(username):
        raise Invalid(
            field,
            "2-64 characters: lowercase letters, digits, '.', '_' or '-', starting with a "
            "letter or digit",
        )
    return username


_CLIENT_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


def check_client_id(client_id: str, field: str = "client_id") -> str:
    if not _CLIENT_ID.match(client_id or ""):
        raise Invalid(field, "2-64 characters: lowercase letters, digits, '.', '_' or '-'")
    return client_id


_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


def check_email(email: str, field: str = "email", *, required: bool = False) -> str:
    email = email.strip()
    if not email:
        if required:
            raise Invalid(field, "is required")
        return ""
    if len(email) > 254 or not _EMAIL.match(email):
        raise Invalid(field, "must be a mail address like nvan@hatinh.gov.vn")
    return email.lower()


def check_mail_domain(domain: str, field: str = "mail_domain") -> str:
    domain = domain.strip().lower()
    if domain and not _EMAIL.match(f"x@{domain}"):
        raise Invalid(field, "must be a domain like stp.gov.vn")
    return domain


_PHONE = re.compile(r"^\+[1-9][0-9]{7,14}$")


def check_phone(phone: str, field: str = "phone") -> str:
    phone = phone.strip()
    if phone and not _PHONE.match(phone):
        raise Invalid(field, "must be in E.164 form, e.g. +84912345678")
    return phone


def expand_roles(roles: set[str], composites: dict[str, list[str]]) -> set[str]:
    """The roles held through composite roles too (cycle-safe)."""
    out, todo = set(roles), list(roles)
    while todo:
        for child in composites.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


@dataclass(frozen=True)
class PasswordPolicy:
    """NIST SP 800-63B-style: length over composition, plus the obvious exclusions."""

    min_length: int = 10
    max_length: int = 128
    min_classes: int = 3  # of lower, upper, digit, other


POLICY = PasswordPolicy()
_COMMON = frozenset(
    {"password", "matkhau", "123456789", "qwertyuiop", "admin", "abc123", "12345678910"}
)


def check_password(
    password: str, field: str = "password", *, username: str = "", policy: PasswordPolicy = POLICY
) -> str:
    if len(password) < policy.min_length:
        raise Invalid(field, f"at least {policy.min_length} characters")
    if len(password) > policy.max_length:
        raise Invalid(field, f"at most {policy.max_length} characters")
    if has_control(password):
        raise Invalid(field, "must not contain control characters")
    classes = sum(
        (
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )
    if classes < policy.min_classes:
        raise Invalid(
            field,
            f"must mix at least {policy.min_classes} of: lowercase, uppercase, digits, symbols",
        )
    lowered = password.lower()
    if username and username.lower() in lowered:
        raise Invalid(field, "must not contain the username")
    if any(word in lowered for word in _COMMON):
        raise Invalid(field, "is too common")
    return password


def check_redirect_uri(uri: str, registered: list[str], field: str = "redirect_uri") -> str:
    """The URI, if it is one of the client's registered URIs character for character (OAuth
    2.1, RFC 9700 §2.1: no prefix, wildcard or origin matching; no normalising, so
    `/%2e%2e/`, `//host/`, a different case or an added query parameter do not match), and
    carries no fragment. Anything else would be an open redirect or a code leak."""
    if not uri:
        raise Invalid(field, "is required")
    if "#" in uri:
        raise Invalid(field, "must not carry a fragment")
    if uri in registered:
        return uri
    raise Invalid(field, "is not registered for this client")
