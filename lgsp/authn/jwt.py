"""Access-token verification: the Authenticator every LGSP service runs.

A token is trusted when its signature verifies against the issuer's published JWKS (cached,
refreshed on an unknown `kid` at most once per `min_refresh_interval_s`), it is inside its
exp/nbf window (with `leeway_s`), its `iss` is exactly the configured issuer and its `aud`
contains the service audience ("lgsp"). The algorithm allow-list comes from the key that
`kid` names (RSA → RS256/PS256, EC P-256 → ES256), never from the token header, so "none"
and HMAC tokens (e.g. HS256 keyed with the public key's PEM) are refused outright.

Methods listed as sensitive are also checked by token introspection (RFC 7662), which sees
revocation (sign-out, disabled account) that a self-contained JWT cannot.

A verified token is remembered (bounded, keyed by the exact token text) until it expires, so
a caller reusing its token pays a dict lookup, not an RSA verification, per call; the time
window is re-checked on every hit, and a key dropped from the JWKS drops its tokens.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey
from joserfc.jws import JWSRegistry, extract_compact, validate_compact

from lgsp.auth import Principal
from lgsp.authn.introspection import HttpIntrospector, Introspector
from lgsp.authn.sessions import EndedSessions
from lgsp.grpc.errors import Unauthenticated, Unavailable
from lgsp.tls import https_verify

if TYPE_CHECKING:
    from lgsp.config import Settings

__all__ = [
    "ALLOWED_ALGORITHMS",
    "JwksCache",
    "JwtAuthenticator",
    "issuer_from_settings",
    "principal_from_claims",
]

log = logging.getLogger("lgsp.auth")

# Asymmetric algorithms only; which of them a token may use depends on its key's type.
ALLOWED_ALGORITHMS = frozenset({"RS256", "PS256", "ES256"})
_RSA_ALGS = frozenset({"RS256", "PS256"})
_EC_ALGS = {"P-256": frozenset({"ES256"})}
_MAX_TOKEN_CHARS = 16_384  # a header of this size is not a token we issued

_REGISTRIES: dict[frozenset[str], JWSRegistry] = {}


def _registry(algorithms: frozenset[str]) -> JWSRegistry:
    registry = _REGISTRIES.get(algorithms)
    if registry is None:
        registry = _REGISTRIES[algorithms] = JWSRegistry(algorithms=sorted(algorithms))
    return registry


@dataclass(frozen=True, slots=True)
class _VerificationKey:
    key: RSAKey | ECKey
    algorithms: frozenset[str]
    registry: JWSRegistry


def _import_jwks(document: Any) -> dict[str, _VerificationKey]:
    """The signature keys of a JWKS document by kid; other keys are skipped, not fatal."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document")
    keys: dict[str, _VerificationKey] = {}
    for data in document["keys"]:
        if not isinstance(data, dict) or not isinstance(data.get("kid"), str):
            continue
        if data.get("use", "sig") != "sig":
            continue
        kty = data.get("kty")
        try:
            if kty == "RSA":
                key: RSAKey | ECKey = RSAKey.import_key(data)
                if key.raw_value.key_size < 2048:
                    continue
                algorithms = _RSA_ALGS
            elif kty == "EC" and data.get("crv") in _EC_ALGS:
                key = ECKey.import_key(data)
                algorithms = _EC_ALGS[data["crv"]]
            else:
                continue
        except (JoseError, ValueError, TypeError) as exc:
            log.warning("skipping unusable JWKS key %r: %s", data.get("kid"), exc)
            continue
        if isinstance(data.get("alg"), str):  # a key pinned to one algorithm keeps to it
            algorithms = algorithms & {data["alg"]}
        if algorithms:
            keys[data["kid"]] = _VerificationKey(key, algorithms, _registry(algorithms))
    return keys


class JwksCache:
    """The issuer's signature keys, fetched with httpx and kept in memory.

    - first use fetches (concurrent callers share one fetch);
    - an unknown kid triggers a refresh only if the last fetch is older than
      `min_refresh_interval_s`, so a flood of made-up kids costs the provider at most one
      request per interval;
    - keys older than `max_age_s` are refreshed in the background; a failed refresh keeps
      the keys already known.
    """

    def __init__(
        self,
        url: str,
        *,
        http_client: httpx.AsyncClient | None = None,
        min_refresh_interval_s: float = 5.0,
        max_age_s: float = 300.0,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.url = url
        self._verify = verify  # the platform's CA when [tls] is on (lgsp.tls)
        self._client = http_client
        self._owns_client = http_client is None
        self._min_interval = min_refresh_interval_s
        self._max_age = max_age_s
        self._timeout = timeout_s
        self._clock = clock
        self._keys: dict[str, _VerificationKey] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last attempt, successful or not
        self._generation = 0  # attempts completed: waiters on the lock skip a repeat fetch
        self._lock = asyncio.Lock()
        self._background: asyncio.Task[None] | None = None
        self.fetches = 0  # requests made (tests and the bench read it)
        self.on_removed: Callable[[set[str]], None] | None = None

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    async def get(self, kid: str) -> _VerificationKey | None:
        """The key for `kid`, fetching or refreshing the set when allowed; None if unknown."""
        found = self._keys.get(kid)
        if found is not None:
            if self._fetched_at is not None and self._clock() - self._fetched_at > self._max_age:
                self._refresh_in_background()
            return found
        if self._fetched_at is None:
            await self.refresh(force=True)
            if self._fetched_at is None:  # a concurrent first fetch failed
                raise Unavailable("identity provider unavailable", retry_after=self._min_interval)
        elif self._may_refresh():
            await self.refresh()
        return self._keys.get(kid)

    def _may_refresh(self) -> bool:
        last = self._attempted_at
        return last is None or self._clock() - last >= self._min_interval

    async def refresh(self, *, force: bool = False) -> None:
        """Fetch the JWKS now (once, however many callers ask at the same moment)."""
        generation = self._generation
        async with self._lock:
            if self._generation != generation:
                return  # another caller fetched while this one waited
            if not force and not self._may_refresh():
                return
            self._attempted_at = self._clock()
            try:
                keys = await self._fetch()
            except (httpx.HTTPError, ValueError) as exc:
                self._generation += 1
                log.warning("cannot fetch JWKS from %s: %s", self.url, exc)
                if not self._keys:
                    raise Unavailable(
                        "identity provider unavailable", retry_after=self._min_interval
                    ) from None
                return
            self._generation += 1
            removed = set(self._keys) - set(keys)
            self._keys = keys
            self._fetched_at = self._clock()
            if removed and self.on_removed is not None:
                self.on_removed(removed)

    async def _fetch(self) -> dict[str, _VerificationKey]:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout, verify=self._verify)
        self.fetches += 1
        response = await self._client.get(self.url, headers={"accept": "application/json"})
        response.raise_for_status()
        keys = _import_jwks(response.json())
        if not keys:
            raise ValueError("JWKS has no usable signature key")
        return keys

    def _refresh_in_background(self) -> None:
        if self._background is not None and not self._background.done():
            return
        if not self._may_refresh():
            return

        async def run() -> None:
            try:
                await self.refresh()
            except Exception:  # logged in refresh; the old keys stay in use
                pass

        self._background = asyncio.get_running_loop().create_task(run())

    async def aclose(self) -> None:
        if self._background is not None:
            self._background.cancel()
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None


@dataclass(frozen=True, slots=True)
class _Verified:
    principal: Principal
    kid: str
    exp: float
    nbf: float
    sid: str = ""
    iat: float | None = None


def _numeric(claims: Mapping[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise Unauthenticated(f"token has no {name} claim")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unauthenticated(f"token {name} claim is not a number")
    return float(value)


def principal_from_claims(claims: Mapping[str, Any], token: str | None = None) -> Principal:
    """The Principal a verified token's claims describe.

    A client-credentials token (Keycloak: a "client_id" claim and a "service-account-…"
    username; built-in provider: the same) gives kind "client".
    """
    username = claims.get("preferred_username")
    username = username if isinstance(username, str) else None
    azp = claims.get("azp")
    client_claim = claims.get("client_id", claims.get("clientId"))
    subject = claims.get("sub")
    is_client = (
        isinstance(client_claim, str)
        or (username or "").startswith("service-account-")
        or (isinstance(subject, str) and subject.startswith("client:"))
    )
    client_id = client_claim if isinstance(client_claim, str) else azp
    client_id = client_id if isinstance(client_id, str) else None
    if not isinstance(subject, str) or not subject:
        if not (is_client and client_id):
            raise Unauthenticated("token has no subject")
        subject = f"client:{client_id}"  # Keycloak may leave sub out of lightweight tokens

    realm_access = claims.get("realm_access")
    raw_roles = realm_access.get("roles") if isinstance(realm_access, dict) else None
    roles = frozenset(r for r in raw_roles or () if isinstance(r, str))
    agency_code = claims.get("agency_code")
    agency_code = agency_code if isinstance(agency_code, str) and agency_code else None

    grants: dict[str, frozenset[str]] = {}
    agency_roles = claims.get("agency_roles")
    if isinstance(agency_roles, dict):
        for code, names in agency_roles.items():
            if isinstance(code, str) and isinstance(names, list):
                grants[code] = frozenset(n for n in names if isinstance(n, str))
    return Principal(
        subject=subject,
        kind="client" if is_client else "user",
        agency_code=agency_code,
        roles=roles,
        token=token,
        # Without the claim, Principal holds the flat roles in the own agency.
        grants=grants,
        username=username,
        client_id=client_id,
        claims=claims,
    )


class JwtAuthenticator:
    """Verifies the "authorization: Bearer <JWT>" of each call (see the module docstring).

    `sensitive_methods` holds full method names ("/pkg.Service/Method") or whole services
    ("/pkg.Service/"), checked with `introspection` as well.
    """

    def __init__(
        self,
        issuer: str,
        *,
        audience: str = "lgsp",
        jwks_url: str | None = None,
        leeway_s: float = 30.0,
        introspection: Introspector | None = None,
        sensitive_methods: Iterable[str] = (),
        http_client: httpx.AsyncClient | None = None,
        min_refresh_interval_s: float = 5.0,
        jwks_max_age_s: float = 300.0,
        cache_size: int = 4096,
        clock: Callable[[], float] = time.time,
        sessions: EndedSessions | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        # Ended sessions, followed from identity's sessions topic by the service runtime.
        self.sessions = sessions
        self.audience = audience
        self.leeway_s = leeway_s
        self.jwks = JwksCache(
            jwks_url or f"{self.issuer}/protocol/openid-connect/certs",
            http_client=http_client,
            min_refresh_interval_s=min_refresh_interval_s,
            max_age_s=jwks_max_age_s,
            verify=verify,
        )
        self.jwks.on_removed = self._forget_kids
        self.introspection = introspection
        self._sensitive = frozenset(sensitive_methods)
        if self._sensitive and introspection is None:
            raise ValueError("sensitive_methods need an introspection client")
        self._clock = clock
        self._cache: dict[str, _Verified] = {}
        self._cache_size = cache_size

    def is_sensitive(self, method: str) -> bool:
        if not self._sensitive:
            return False
        return method in self._sensitive or method[: method.rfind("/") + 1] in self._sensitive

    async def authenticate(self, metadata: Mapping[str, str], method: str) -> Principal:
        token = _bearer(metadata.get("authorization"))
        principal = await self.verify(token)
        if self.introspection is not None and self.is_sensitive(method):
            if not await self.introspection.is_active(token):
                raise Unauthenticated("token revoked or no longer active")
        return principal

    async def verify(self, token: str) -> Principal:
        """The principal of a valid access token; Unauthenticated (safe message) if not."""
        now = self._clock()
        hit = self._cache.get(token)
        if hit is not None:
            self._check_window(hit.exp, hit.nbf, now)
            if self.sessions is not None:
                if not self.sessions.ready:
                    await self.sessions.wait_ready()
                self.sessions.check(hit.sid, hit.principal.subject, hit.iat)
            return hit.principal
        if len(token) > _MAX_TOKEN_CHARS:
            raise Unauthenticated("malformed token")
        try:
            obj = extract_compact(token.encode("ascii"))
        except (JoseError, ValueError, UnicodeEncodeError):
            raise Unauthenticated("malformed token") from None
        header = obj.headers()
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise Unauthenticated("token algorithm not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("token has no key id")
        key = await self.jwks.get(kid)
        if key is None:
            raise Unauthenticated("token signed with an unknown key")
        if alg not in key.algorithms:
            raise Unauthenticated("token algorithm not allowed for its key")
        try:
            valid = validate_compact(obj, key.key, registry=key.registry)
        except (JoseError, ValueError):
            valid = False
        if not valid:
            raise Unauthenticated("token signature invalid")
        try:
            claims = json.loads(obj.payload)
        except ValueError:
            raise Unauthenticated("malformed token") from None
        if not isinstance(claims, dict):
            raise Unauthenticated("malformed token")

        exp = _numeric(claims, "exp", required=True)
        nbf = _numeric(claims, "nbf", required=False)
        iat = _numeric(claims, "iat", required=False)
        assert exp is not None
        start = nbf if nbf is not None else float("-inf")
        self._check_window(exp, start, now)
        if iat is not None and iat > now + self.leeway_s:
            raise Unauthenticated("token issued in the future")
        if claims.get("iss") != self.issuer:
            raise Unauthenticated("token issuer not trusted")
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if self.audience not in audiences:
            raise Unauthenticated(f"token audience does not include {self.audience}")
        typ = claims.get("typ")
        if typ is not None and str(typ).lower() != "bearer":
            raise Unauthenticated("not an access token")
        principal = principal_from_claims(claims, token)
        raw_sid = claims.get("sid")
        sid = raw_sid if isinstance(raw_sid, str) else ""
        if self.sessions is not None:
            if not self.sessions.ready:
                await self.sessions.wait_ready()
            self.sessions.check(sid, principal.subject, iat)
        self._remember(token, _Verified(principal, kid, exp, start, sid, iat))
        return principal

    def _check_window(self, exp: float, nbf: float, now: float) -> None:
        if now > exp + self.leeway_s:
            raise Unauthenticated("token expired")
        if now + self.leeway_s < nbf:
            raise Unauthenticated("token not yet valid")

    def _remember(self, token: str, verified: _Verified) -> None:
        if self._cache_size <= 0:
            return
        if len(self._cache) >= self._cache_size:
            now = self._clock()
            expired = [t for t, v in self._cache.items() if now > v.exp + self.leeway_s]
            for t in expired:
                del self._cache[t]
            if len(self._cache) >= self._cache_size:  # still full: drop the oldest entry
                del self._cache[next(iter(self._cache))]
        self._cache[token] = verified

    def _forget_kids(self, kids: set[str]) -> None:
        for t in [t for t, v in self._cache.items() if v.kid in kids]:
            del self._cache[t]

    def forget(self) -> None:
        """Drop every remembered token (the next call of each verifies it again)."""
        self._cache.clear()

    async def aclose(self) -> None:
        await self.jwks.aclose()
        if self.introspection is not None:
            await self.introspection.aclose()


def _bearer(header: str | None) -> str:
    if not header:
        raise Unauthenticated("missing bearer token")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("authorization must be a bearer token")
    return token.strip()


def issuer_from_settings(settings: Settings) -> str:
    """The issuer services trust: the built-in provider's realm "lgsp" or Keycloak's realm."""
    ident = settings.identity
    if ident.provider == "keycloak":
        return f"{ident.keycloak_url.rstrip('/')}/realms/{ident.keycloak_realm}"
    if ident.issuer_base_url:
        return f"{ident.issuer_base_url.rstrip('/')}/realms/lgsp"
    from lgsp.config import peer

    # identity's OpenID Connect side, on the host its peers reach it at.
    return f"{peer(settings, 'identity').url(ident.http_port)}/realms/lgsp"


def authenticator_from_settings(
    settings: Settings,
    *,
    audience: str = "lgsp",
    sensitive_methods: Iterable[str] = (),
) -> JwtAuthenticator:
    """The token checks configured by `[identity]`: the built-in provider's issuer
    (http://<host>:<identity.http_port>/realms/lgsp) or Keycloak's ({keycloak_url}/realms/
    {keycloak_realm}). With identity.keycloak_client_secret set, `sensitive_methods` are
    also checked by token introspection as client identity.keycloak_client_id."""
    issuer = issuer_from_settings(settings)
    ident = settings.identity
    introspector = None
    sensitive = tuple(sensitive_methods)
    if sensitive and not ident.keycloak_client_secret:
        # Still safe to start (signatures are checked), but revocation goes unseen.
        log.warning(
            "identity.keycloak_client_secret is not set: sensitive methods are checked "
            "without token introspection"
        )
        sensitive = ()
    if ident.keycloak_client_secret:
        introspector = HttpIntrospector(
            f"{issuer}/protocol/openid-connect/token/introspect",
            client_id=ident.keycloak_client_id,
            client_secret=ident.keycloak_client_secret,
        )
    return JwtAuthenticator(
        issuer,
        audience=audience,
        introspection=introspector,
        sensitive_methods=sensitive,
        # Followed by the service runtime: tokens of ended sessions are refused at once.
        sessions=EndedSessions(),
        verify=https_verify(settings),
    )
