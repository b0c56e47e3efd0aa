"""A realm's settings that apply, as Keycloak's realm representation names them: access
token lifetime, SSO session idle and maximum lifetimes, brute-force detection, and the
password policy. Defaults come from the configuration and the domain's rules; an
administrator changes them with `PUT /admin/realms/{realm}` (python-keycloak `update_realm`).

What is validated, and why the bounds:
- accessTokenLifespan 60–3600 s: retired signing keys stay published MAX_ACCESS_TTL, and the
  ended-session events promise no token outlives that.
- ssoSessionIdleTimeout 60–86400 s, ssoSessionMaxLifespan 300 s–30 days, idle ≤ max (the
  configuration's own bounds, identity.sso_session_*_seconds).
- bruteForceProtected; failureFactor 1–100; the lock is fixed-length (no increments), so
  waitIncrementSeconds and maxFailureWaitSeconds are one value, 60–86400 s.
- passwordPolicy in Keycloak's syntax, the terms this provider enforces: length(8–64),
  maxLength(length–1024), notUsername, passwordBlacklist, hashAlgorithm(argon2). The three of
  four character classes and the common-word list always apply (NIST SP 800-63B §5.1.1.2
  asks for a blocklist; the classes are the province's rule).
Any other field the representation lists and this provider reports is read-only; a field it
does not know is refused by name rather than dropped silently."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from services.identity.domain import sessions as rules
from services.identity.domain.errors import Invalid
from services.identity.domain.model import PasswordPolicy
from services.identity.domain.security import LockoutPolicy

NEVER_LOCKS = 1_000_000_000  # brute-force detection off: the attempt counter never reaches it


@dataclass(frozen=True)
class RealmSettings:
    access_token_lifespan: int = rules.ACCESS_TTL
    sso_idle: int = rules.DEFAULT_SSO.idle
    sso_max: int = rules.DEFAULT_SSO.max
    brute_force: bool = True
    failure_factor: int = LockoutPolicy.max_failures
    lock_seconds: int = int(LockoutPolicy.lock_seconds)
    password: PasswordPolicy = field(default_factory=PasswordPolicy)

    @property
    def sso(self) -> rules.SsoLifetimes:
        return rules.SsoLifetimes(self.sso_idle, self.sso_max)

    @property
    def lockout(self) -> LockoutPolicy:
        if not self.brute_force:
            return LockoutPolicy(NEVER_LOCKS, self.lock_seconds)
        return LockoutPolicy(self.failure_factor, self.lock_seconds)

    def stored(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_stored(cls, data: dict[str, Any], defaults: RealmSettings) -> RealmSettings:
        """Stored settings over the defaults (a field added later keeps its default)."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if isinstance(known.get("password"), dict):
            known["password"] = PasswordPolicy(**known["password"])
        return replace(defaults, **known)

    def policy_text(self) -> str:
        p = self.password
        return (
            f"length({p.min_length}) and maxLength({p.max_length}) and "
            "notUsername(undefined) and passwordBlacklist(common) and hashAlgorithm(argon2)"
        )

    def representation(self) -> dict[str, Any]:
        """The fields of Keycloak's RealmRepresentation these settings are."""
        return {
            "accessTokenLifespan": self.access_token_lifespan,
            "ssoSessionIdleTimeout": self.sso_idle,
            "ssoSessionMaxLifespan": self.sso_max,
            "bruteForceProtected": self.brute_force,
            "permanentLockout": False,
            "failureFactor": self.failure_factor,
            "waitIncrementSeconds": self.lock_seconds,
            "maxFailureWaitSeconds": self.lock_seconds,
            "passwordPolicy": self.policy_text(),
        }


def _int(rep: dict[str, Any], name: str, low: int, high: int) -> int:
    value = rep[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Invalid(name, f"must be a whole number from {low} to {high}")
    return value


_TERM = re.compile(r"^([A-Za-z]+)\(([^()]*)\)$|^([A-Za-z]+)$")


def parse_password_policy(text: Any) -> PasswordPolicy:
    """Keycloak's passwordPolicy string ("length(12) and notUsername(undefined) and …")."""
    name = "passwordPolicy"
    if not isinstance(text, str) or len(text) > 1000:
        raise Invalid(name, "must be a policy string such as length(12) and notUsername")
    low, high = PasswordPolicy.min_length, PasswordPolicy.max_length
    for raw in [t.strip() for t in text.split(" and ")] if text.strip() else []:
        m = _TERM.match(raw)
        if m is None:
            raise Invalid(name, f"cannot read {raw[:40]!r}")
        term, arg = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), "")
        if term in ("length", "maxLength"):
            if not arg.isdigit():
                raise Invalid(name, f"{term} needs a number")
            if term == "length":
                low = int(arg)
            else:
                high = int(arg)
        elif term == "hashAlgorithm":
            if arg not in ("", "argon2"):
                raise Invalid(name, "passwords are hashed with argon2 only")
        elif term not in ("notUsername", "passwordBlacklist"):
            raise Invalid(name, f"{term[:40]} is not a policy this provider enforces")
    if not 8 <= low <= 64:
        raise Invalid(name, "length must be from 8 to 64")
    if not low <= high <= 1024:
        raise Invalid(name, "maxLength must be from length to 1024")
    return PasswordPolicy(min_length=low, max_length=high)


SETTABLE = (
    "accessTokenLifespan",
    "ssoSessionIdleTimeout",
    "ssoSessionMaxLifespan",
    "bruteForceProtected",
    "failureFactor",
    "waitIncrementSeconds",
    "maxFailureWaitSeconds",
    "passwordPolicy",
    "permanentLockout",
)


def apply(
    current: RealmSettings, rep: Any, read_only: dict[str, Any]
) -> tuple[RealmSettings, list[str]]:
    """The settings after a RealmRepresentation PUT, and the fields it changed. `read_only`:
    the other fields this provider reports (sent back unchanged by a GET → PUT script)."""
    if not isinstance(rep, dict):
        raise Invalid("realm", "must be a realm representation (a JSON object)")
    for key, value in rep.items():
        if key in SETTABLE:
            continue
        if key not in read_only:
            raise Invalid(str(key)[:64], "is not a realm setting this provider supports")
        if value != read_only[key]:
            raise Invalid(key, "is read-only here")
    new = current
    if "accessTokenLifespan" in rep:
        new = replace(
            new, access_token_lifespan=_int(rep, "accessTokenLifespan", 60, rules.MAX_ACCESS_TTL)
        )
    if "ssoSessionIdleTimeout" in rep:
        new = replace(new, sso_idle=_int(rep, "ssoSessionIdleTimeout", 60, 86400))
    if "ssoSessionMaxLifespan" in rep:
        new = replace(new, sso_max=_int(rep, "ssoSessionMaxLifespan", 300, 30 * 86400))
    if new.sso_idle > new.sso_max:
        field_name = (
            "ssoSessionIdleTimeout" if "ssoSessionIdleTimeout" in rep else "ssoSessionMaxLifespan"
        )
        raise Invalid(field_name, "the idle timeout cannot exceed the maximum lifespan")
    if "bruteForceProtected" in rep:
        if not isinstance(rep["bruteForceProtected"], bool):
            raise Invalid("bruteForceProtected", "must be true or false")
        new = replace(new, brute_force=rep["bruteForceProtected"])
    if rep.get("permanentLockout") not in (None, False):
        raise Invalid("permanentLockout", "accounts are locked for a time, never for good")
    if "failureFactor" in rep:
        new = replace(new, failure_factor=_int(rep, "failureFactor", 1, 100))
    waits = [k for k in ("waitIncrementSeconds", "maxFailureWaitSeconds") if k in rep]
    for k in waits:
        _int(rep, k, 60, 86400)
    if len(waits) == 2 and rep[waits[0]] != rep[waits[1]]:
        raise Invalid("maxFailureWaitSeconds", "the lock has one length: equal to the wait")
    if waits:
        new = replace(new, lock_seconds=rep[waits[0]])
    if "passwordPolicy" in rep:
        new = replace(new, password=parse_password_policy(rep["passwordPolicy"]))
    before, after = current.representation(), new.representation()
    return new, sorted(k for k in after if before[k] != after[k])
