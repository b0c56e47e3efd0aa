"""Agencies, accounts, groups and client systems: which fields a create or an update may set,
each checked by its rule (domain/model.py), and the rules between records (etags, the agency
tree, account status). Sources are any objects with the fields as attributes (the API's
messages, in practice); what comes back are plain column values.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from services.identity.domain import model
from services.identity.domain.errors import Invalid, Stale
from services.identity.domain.model import Status

Record = Mapping[str, Any]  # a stored record's columns by name

AGENCY_FIELDS = (
    "name",
    "short_name",
    "level",
    "parent_code",
    "mail_domain",
    "address",
    "phone",
    "email",
    "place_name",
)
USER_FIELDS = ("display_name", "email", "phone", "position")
MAX_TOKEN_TTL = 3600  # a client's token_ttl_seconds, at most


def fold(text: str) -> str:
    """Lowercase without Vietnamese diacritics (đ → d), for accent-insensitive search."""
    decomposed = unicodedata.normalize("NFD", text.lower().replace("đ", "d"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def user_search_text(username: str, display_name: str, email: str) -> str:
    return fold(f"{username} {display_name} {email}")


def etag(version: int) -> str:
    return f"v{version}"


def check_etag(record: Record, given: str, what: str) -> None:
    """An update that names an etag applies only to that version of the record."""
    if given and given != etag(record["version"]):
        raise Stale(f"{what} was changed by someone else (etag {given} is stale); re-read it")


def require_mask(mask: Iterable[Any]) -> None:
    if not mask:
        raise Invalid("update_mask", "name at least one field to change")


def check_request_id(request_id: str) -> None:
    if request_id:
        try:
            uuid.UUID(request_id)
        except ValueError:
            raise Invalid("request_id", "must be a UUID") from None


def account_status(record: Record, now: float) -> int:
    """LOCKED only while the lock lasts; an expired lock reads as ACTIVE."""
    if record["status"] == Status.LOCKED and (record["locked_until"] or 0) <= now:
        return int(Status.ACTIVE)
    return int(record["status"])


def reason(text: str) -> str:
    return model.check_name(text, "reason", max_len=500, required=False)


# --- agencies --------------------------------------------------------------------------------


def agency_values(a: Any, fields: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields:
        if f == "name":
            out["name"] = model.check_name(a.name, "agency.name", max_len=300)
        elif f == "short_name":
            out["short_name"] = model.check_name(
                a.short_name, "agency.short_name", max_len=50, required=False
            )
        elif f == "level":
            if a.level not in model.AgencyLevel._value2member_map_:
                raise Invalid("agency.level", "is required (province, department, …)")
            out["level"] = int(a.level)
        elif f == "parent_code":
            out["parent_code"] = (
                model.check_agency_code(a.parent_code, "agency.parent_code")
                if a.parent_code
                else None
            )
        elif f == "mail_domain":
            out["mail_domain"] = model.check_mail_domain(a.mail_domain, "agency.mail_domain")
        elif f in ("address", "place_name"):
            out[f] = model.check_name(getattr(a, f), f"agency.{f}", max_len=300, required=False)
        elif f == "phone":
            out["phone"] = model.check_name(a.phone, "agency.phone", max_len=32, required=False)
        elif f == "email":
            out["email"] = model.check_email(a.email, "agency.email")
        else:
            raise Invalid("update_mask", f"field {f!r} cannot be changed")
    return out


def agency_update(a: Any, mask: Iterable[str]) -> dict[str, Any]:
    mask = list(mask)
    require_mask(mask)
    if "code" in mask or "status" in mask:
        raise Invalid("update_mask", "code and status cannot be changed here")
    return agency_values(a, mask)


# --- accounts --------------------------------------------------------------------------------


def user_values(u: Any, fields: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields:
        if f == "display_name":
            out[f] = model.check_name(u.display_name, "user.display_name")
        elif f == "email":
            out[f] = model.check_email(u.email, "user.email")
        elif f == "phone":
            out[f] = model.check_phone(u.phone, "user.phone")
        elif f == "position":
            out[f] = model.check_name(u.position, "user.position", required=False)
        elif f == "agency_code":
            out[f] = model.check_agency_code(u.agency_code, "user.agency_code")
        else:
            raise Invalid("update_mask", f"field {f!r} cannot be changed here")
    return out


def person_names(first_name: str, last_name: str) -> tuple[str, str]:
    return (
        model.check_name(first_name, "firstName", max_len=100, required=False),
        model.check_name(last_name, "lastName", max_len=100, required=False),
    )


# --- groups ----------------------------------------------------------------------------------


def group_description(text: str) -> str:
    return model.check_name(text, "group.description", 1000, required=False)


def group_values(g: Any, mask: Iterable[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for f in mask:
        if f == "name":
            values["name"] = model.check_name(g.name, "group.name")
        elif f == "description":
            values["description"] = group_description(g.description)
        else:
            raise Invalid("update_mask", f"field {f!r} cannot be changed")
    require_mask(values)
    return values


# --- client systems --------------------------------------------------------------------------


def check_token_ttl(seconds: int) -> int:
    if not 0 <= seconds <= MAX_TOKEN_TTL:
        raise Invalid("client.token_ttl_seconds", f"must be between 0 and {MAX_TOKEN_TTL}")
    return seconds


def check_client_secret(secret: str) -> str:
    if len(secret) < 16 or len(secret) > 200 or model.has_control(secret):
        raise Invalid("secret", "16-200 printable characters")
    return secret


# Keycloak's required actions this provider knows. Until they are done the account signs in
# nowhere (the password grant and the login page say "Account is not fully set up").
REQUIRED_ACTIONS = ("UPDATE_PASSWORD", "CONFIGURE_TOTP", "VERIFY_PROFILE")


def check_required_actions(actions: Any) -> list[str]:
    if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
        raise Invalid("requiredActions", "must be a list of action names")
    unknown = [a for a in actions if a not in REQUIRED_ACTIONS]
    if unknown:
        raise Invalid("requiredActions", f"unknown action {unknown[0][:40]!r}")
    return list(dict.fromkeys(actions))


def required_actions(row: Any) -> list[str]:
    """An account's pending required actions, in Keycloak's names."""
    stored = (row["required_actions"] or "").split()
    return (["UPDATE_PASSWORD"] if row["password_temporary"] else []) + stored


def check_redirect_uris(uris: Iterable[str]) -> list[str]:
    """Registered redirect URIs: absolute http(s) URIs with a host, compared exactly at sign-in
    (model.check_redirect_uri), so no wildcard and no fragment."""
    out = list(uris)
    for uri in out:
        parts = urlsplit(uri) if len(uri) <= 2000 else None
        if parts is None or parts.scheme not in ("https", "http") or not parts.hostname:
            raise Invalid("redirectUris", f"{uri!r} is not an absolute http(s) URI")
        if "#" in uri:
            raise Invalid("redirectUris", f"{uri!r} has a fragment")
        if "*" in uri:
            raise Invalid("redirectUris", f"{uri!r}: wildcards are not allowed (exact URIs only)")
    return out


def client_values(c: Any, mask: Iterable[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for f in mask:
        if f == "display_name":
            values[f] = model.check_name(c.display_name, "client.display_name")
        elif f == "scopes":
            values[f] = list(c.scopes)
        elif f == "token_ttl_seconds":
            values["token_ttl"] = check_token_ttl(c.token_ttl_seconds)
        elif f == "owner_agency_code":
            values[f] = model.check_agency_code(c.owner_agency_code, "client.owner_agency_code")
        elif f == "allow_app_passwords":
            values[f] = bool(c.allow_app_passwords)
        else:
            raise Invalid("update_mask", f"field {f!r} cannot be changed")
    require_mask(values)
    return values


def service_account_name(client_id: str) -> str:
    return f"service-account-{client_id}"
