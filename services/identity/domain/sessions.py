"""Sessions and tokens: lifetimes, which scopes a client gets, what an access token and an ID
token say (the contract with lgsp.auth, docs/identity.md), PKCE, and when a session, code or
refresh token is still good. No storage, no signing here: records in, claims out.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from services.identity.domain.access import REALM
from services.identity.domain.errors import BadRequest, GrantRefused
from services.identity.domain.model import expand_roles

Record = Mapping[str, Any]

ACCESS_TTL = 300
MAX_ACCESS_TTL = 3600  # clients may ask for up to this; retired keys stay published this long
REFRESH_TTL = 1800
SESSION_TTL = 10 * 3600
CODE_TTL = 60
LGSP_AUDIENCE = "lgsp"
BASE_SCOPES = ("openid", "profile", "email", "roles", "offline_access")


# Authentication context (OIDC Core §2): level "1" a password, "2" a password and a one-time
# code (Keycloak's step-up levels); amr values from RFC 8176 §2.
ACR_PASSWORD = "1"
ACR_TWO_FACTOR = "2"


@dataclass(frozen=True)
class Authentication:
    """How and when the user of a session proved who they are (auth_time, acr, amr)."""

    auth_time: int
    acr: str
    amr: tuple[str, ...]

    @classmethod
    def password(cls, now: float, second_factor: bool) -> Authentication:
        if second_factor:
            return cls(int(now), ACR_TWO_FACTOR, ("pwd", "otp", "mfa"))
        return cls(int(now), ACR_PASSWORD, ("pwd",))

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Authentication | None:
        """From a stored session (None for sessions older than these columns)."""
        if not row.get("auth_time"):
            return None
        return cls(int(row["auth_time"]), row["acr"], tuple(row["amr"].split()))

    def stored(self) -> dict[str, Any]:
        return {"auth_time": float(self.auth_time), "acr": self.acr, "amr": " ".join(self.amr)}


@dataclass(frozen=True)
class SsoLifetimes:
    """The SSO session's idle and maximum lifetimes (identity.sso_session_*_seconds)."""

    idle: int = 1800
    max: int = SESSION_TTL


DEFAULT_SSO = SsoLifetimes()


def sso_active(row: Mapping[str, Any], lifetimes: SsoLifetimes, now: float) -> bool:
    """Not logged out, not past its maximum life, used within the idle time."""
    return (
        row["revoked_at"] is None
        and row["expires_at"] > now
        and row["last_seen_at"] + lifetimes.idle > now
    )


PROMPTS = frozenset({"none", "login", "consent", "select_account"})


def parse_prompt(value: str) -> frozenset[str]:
    """OIDC Core §3.1.2.1: space-separated; `none` only alone."""
    words = frozenset(value.split())
    if not words <= PROMPTS:
        raise BadRequest("Invalid parameter: prompt")
    if "none" in words and len(words) > 1:
        raise BadRequest("Invalid parameter: prompt (none with other values)")
    return words


def parse_max_age(value: str) -> int | None:
    if not value:
        return None
    if not value.isdigit() or len(value) > 10:
        raise BadRequest("Invalid parameter: max_age")
    return int(value)


def must_authenticate(
    prompt: frozenset[str], max_age: int | None, auth: Authentication, now: float
) -> bool:
    """An SSO session exists: is the user to sign in again all the same? (prompt=login, or
    the sign-in is older than max_age seconds; OIDC Core §3.1.2.1)."""
    if "login" in prompt:
        return True
    return max_age is not None and now - auth.auth_time > max_age


class HeldRole(NamedTuple):
    role: str
    agency_code: str


def with_composites(grants: Iterable[Any], composites: dict[str, list[str]]) -> list[Any]:
    """Role grants plus what composite roles give, each in the agency of its grant."""
    grants = list(grants)
    if not composites:
        return grants
    out = {HeldRole(g.role, g.agency_code) for g in grants}
    for g in grants:
        for role in expand_roles({g.role}, composites):
            out.add(HeldRole(role, g.agency_code))
    return sorted(out)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def pkce_s256(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode()).digest())


def granted_scope(requested: str, client: Record, default: str = "openid") -> str:
    """The requested scopes the client may have (the standard ones and its own)."""
    words = [w for w in requested.split() if w] or default.split()
    allowed = {*BASE_SCOPES, *client["scopes"]}
    return " ".join(w for w in dict.fromkeys(words) if w in allowed)


def issuer(base_url: str, realm: str) -> str:
    return f"{base_url}/realms/{realm}"


def claims(
    iss: str,
    realm: str,
    user: Record,
    client: Record,
    grants: Iterable[Any],
    scope: str,
    sid: str | None,
    ttl: int,
    now: int,
    auth: Authentication | None = None,
    client_roles: Mapping[str, list[str]] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(access token claims, ID token claims) of a user (or a client's service account)
    with its role grants (objects with .role and .agency_code)."""
    grants = list(grants)
    roles = sorted({g.role for g in grants})
    per_agency: dict[str, list[str]] = {}
    for g in grants:
        per_agency.setdefault(g.agency_code or user["agency_code"] or "", []).append(g.role)
    aud = [LGSP_AUDIENCE] if realm == REALM else [f"{realm}-realm"]
    if client["client_id"] not in aud:
        aud.append(client["client_id"])
    base = {
        "iss": iss,
        "sub": user["id"],
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "azp": client["client_id"],
        "preferred_username": user["username"],
        "name": user["display_name"],
        "email": user["email"],
    }
    if user["first_name"] or user["last_name"]:
        base["given_name"] = user["first_name"]
        base["family_name"] = user["last_name"]
    if sid:
        base["sid"] = sid
    if auth is not None:
        base["auth_time"] = auth.auth_time
        base["acr"] = auth.acr
    access = {
        **base,
        "jti": str(uuid.uuid4()),
        "aud": aud,
        "typ": "Bearer",
        "scope": scope,
        "realm_access": {"roles": roles},
        "agency_code": user["agency_code"] or "",
        "agency_roles": {k: sorted(v) for k, v in per_agency.items() if k},
    }
    if client_roles:  # Keycloak's claim for client roles
        access["resource_access"] = {c: {"roles": list(n)} for c, n in client_roles.items()}
    if user["service_client_id"]:
        access["client_id"] = user["service_client_id"]
    ident = {**base, "jti": str(uuid.uuid4()), "aud": client["client_id"], "typ": "ID"}
    if auth is not None:
        ident["amr"] = list(auth.amr)
    return access, ident


USERINFO_CLAIMS = (
    "sub",
    "preferred_username",
    "name",
    "email",
    "given_name",
    "family_name",
    "agency_code",
)


def userinfo(claims: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {k: claims[k] for k in USERINFO_CLAIMS if k in claims}
    out["email_verified"] = bool(claims.get("email"))
    return out


def check_code(code: Record, now: float, redirect_uri: str, verifier: str) -> None:
    """An unspent authorization code is good until it expires, for the redirect URI it was
    issued to, and (when it carries a PKCE challenge) with the matching verifier."""
    if code["expires_at"] <= now:
        raise GrantRefused("Code not valid")
    if redirect_uri != code["redirect_uri"]:
        raise GrantRefused("Incorrect redirect_uri")
    if code["code_challenge"]:
        if not verifier:
            raise GrantRefused("PKCE code verifier not specified")
        if not secrets.compare_digest(pkce_s256(verifier), code["code_challenge"]):
            raise GrantRefused("PKCE verification failed")


def session_active(revoked_at: float | None, expires_at: float, now: float) -> bool:
    return revoked_at is None and expires_at > now


def tokens_live_until(session_expires_at: float, now: float) -> float:
    """The latest an access token of a session ending now can still be used: none is issued
    after the session's end, and none lives longer than MAX_ACCESS_TTL."""
    return min(session_expires_at, now) + MAX_ACCESS_TTL
