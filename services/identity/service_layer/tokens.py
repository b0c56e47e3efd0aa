"""The OpenID Connect provider's rules: signing keys, grants, sessions, refresh rotation.

Token format (the contract with lgsp.auth, see docs/identity.md): RS256 JWTs with a `kid`;
refresh tokens are opaque 256-bit values stored hashed, rotated on every use; presenting a
spent one revokes its whole session (reuse detection). Sync methods: run them in a thread.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from lgsp.api.identity.v1 import events_pb2 as ev
from lgsp.api.identity.v1 import identity_pb2 as pb
from lgsp.db import UnitOfWork
from services.identity.adapters import tables as t
from services.identity.domain import security
from services.identity.domain.model import Status
from services.identity.service_layer.directory import MASTER, REALM, SOURCE, Actor, Directory

Row = Any  # a SQLAlchemy RowMapping (or any str-keyed mapping)

ACCESS_TTL = 300
MAX_ACCESS_TTL = 3600  # clients may ask for up to this; retired keys stay published this long
REFRESH_TTL = 1800
SESSION_TTL = 10 * 3600
CODE_TTL = 60
CACHE_TTL = 5.0
LGSP_AUDIENCE = "lgsp"

# Statements of the token path built once: building a select/insert per request costs more
# than executing it on SQLite (parameters are passed apart, the compiled form is cached).
_RT_INSERT = sa.insert(t.refresh_tokens)
_SESSION_INSERT = sa.insert(t.sessions)
_RT_WITH_SESSION = (
    sa.select(
        t.refresh_tokens.c.token_hash,
        t.refresh_tokens.c.used_at,
        t.refresh_tokens.c.expires_at,
        t.sessions.c.id.label("sid"),
        t.sessions.c.realm,
        t.sessions.c.user_id,
        t.sessions.c.client_id,
        t.sessions.c.scope,
        t.sessions.c.revoked_at.label("session_revoked_at"),
        t.sessions.c.expires_at.label("session_expires_at"),
    )
    .join(t.sessions, t.sessions.c.id == t.refresh_tokens.c.session_id)
    .where(t.refresh_tokens.c.token_hash == sa.bindparam("hash"))
)
_RT_SPEND = (
    sa.update(t.refresh_tokens)
    .where(
        t.refresh_tokens.c.token_hash == sa.bindparam("hash"),
        t.refresh_tokens.c.used_at.is_(None),
    )
    .values(used_at=sa.bindparam("spent_at"))
)


class OAuthError(Exception):
    """An RFC 6749 error answer: `error` code, description, HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def pkce_s256(verifier: str) -> str:
    return _b64(hashlib.sha256(verifier.encode()).digest())


class KeyStore:
    """RSA signing keys persisted in the identity DB so restarts keep their kids.

    The newest key signs; older keys stay in the JWKS until every token they signed has
    expired (retired_at + MAX_ACCESS_TTL), then drop out."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._loaded_at = 0.0
        self._current: RSAKey | None = None
        self._published: list[RSAKey] = []
        self._form_keys: list[bytes] = []

    def _generate(self, s: Session) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        kid = _b64(secrets.token_bytes(16))
        s.execute(
            sa.insert(t.signing_keys).values(kid=kid, private_pem=pem, created_at=time.time())
        )

    def load(self, force: bool = False) -> None:
        if not force and time.time() - self._loaded_at < 30:
            return
        with self._lock:
            with Session(self.engine) as s:
                rows = (
                    s.execute(
                        sa.select(t.signing_keys).order_by(t.signing_keys.c.created_at.desc())
                    )
                    .mappings()
                    .all()
                )
            if not rows:
                with UnitOfWork(self.engine, source=SOURCE) as uow:
                    if not uow.session.execute(sa.select(t.signing_keys.c.kid)).first():
                        self._generate(uow.session)
                    uow.commit()
                with Session(self.engine) as s:
                    rows = (
                        s.execute(
                            sa.select(t.signing_keys).order_by(t.signing_keys.c.created_at.desc())
                        )
                        .mappings()
                        .all()
                    )
            now = time.time()
            keys, form_keys = [], []
            for r in rows:
                if r["retired_at"] is None or r["retired_at"] + MAX_ACCESS_TTL > now:
                    keys.append(
                        RSAKey.import_key(
                            r["private_pem"], {"kid": r["kid"], "use": "sig", "alg": "RS256"}
                        )
                    )
                    form_keys.append(
                        hashlib.sha256(b"lgsp login form\0" + r["private_pem"].encode()).digest()
                    )
            self._current = keys[0]
            self._published = keys
            self._form_keys = form_keys
            self._loaded_at = now

    def rotate(self) -> str:
        """A new key signs from now on; the previous one is retired (still published)."""
        with UnitOfWork(self.engine, source=SOURCE) as uow:
            uow.session.execute(
                sa.update(t.signing_keys)
                .where(t.signing_keys.c.retired_at.is_(None))
                .values(retired_at=time.time())
            )
            self._generate(uow.session)
            uow.commit()
        self.load(force=True)
        assert self._current is not None
        return str(self._current.kid)

    @property
    def current(self) -> RSAKey:
        self.load()
        assert self._current is not None
        return self._current

    def jwks(self) -> dict[str, Any]:
        self.load()
        return {
            "keys": [
                {**k.as_dict(private=False), "use": "sig", "alg": "RS256"} for k in self._published
            ]
        }

    def keyset(self) -> KeySet:
        self.load()
        return KeySet(list(self._published))

    def public_key_b64(self) -> str:
        """The realm endpoint's public_key: base64 DER SubjectPublicKeyInfo (Keycloak's form)."""
        der = self.current.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def form_keys(self) -> list[bytes]:
        """HMAC keys for the login form's anti-forgery token, derived from the signing keys
        (so every replica shares them without another secret); the first one signs."""
        self.load()
        return self._form_keys

    def sign(self, claims: dict[str, Any]) -> str:
        key = self.current
        return jwt.encode({"alg": "RS256", "typ": "JWT", "kid": key.kid}, claims, key)


@dataclass
class ClientContext:
    """Request facts the audit log and login events record."""

    remote_ip: str = ""
    user_agent: str = ""


@dataclass
class Tokens:
    engine: Engine
    directory: Directory
    base_url: str
    keys: KeyStore
    after_commit: Any = lambda: None
    throttle: security.AddressThrottle = field(default_factory=security.AddressThrottle)
    access_ttl: int = ACCESS_TTL
    _cache: dict[tuple[str, ...], tuple[int, float, Any]] = field(default_factory=dict)

    def _login_committed(self) -> None:
        """Login events wake the relay like any other event. (Leaving them to its 0.5 s poll
        was tried: its larger batches hold SQLite's write lock longer and token requests then
        stall in the busy handler.)"""
        self.after_commit()

    def __post_init__(self) -> None:
        # SQLite has one writer at a time; token requests that wait for it in SQLite's busy
        # handler sleep in steps of milliseconds and wake late. Queuing them on a lock in this
        # process instead hands the database over the moment it is free (PostgreSQL: no lock).
        self._writer: AbstractContextManager[Any] = (
            threading.RLock() if self.engine.dialect.name == "sqlite" else nullcontext()
        )

    @contextmanager
    def _uow(self) -> Iterator[UnitOfWork]:
        with self._writer:
            with UnitOfWork(
                self.engine, source=SOURCE, session_factory=self.directory.sessions
            ) as uow:
                yield uow

    def issuer(self, realm: str) -> str:
        return f"{self.base_url}/realms/{realm}"

    # --- clients --------------------------------------------------------------------------

    def _cached(self, key: tuple[str, ...], load: Any) -> Any:
        """A short-lived copy of a directory read (clients, service accounts, grants).

        Dropped when the directory changes in this process (generation) and after CACHE_TTL
        seconds otherwise, so a change made through another replica lands within that time."""
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] == self.directory.generation and hit[1] > now:
            return hit[2]
        value = load()
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (self.directory.generation, now + CACHE_TTL, value)
        return value

    def client(self, s: Session, realm: str, client_id: str, secret: str | None) -> Row:
        """The authenticated client (confidential: secret checked; public: no secret)."""
        row = self._cached(
            ("client", realm, client_id),
            lambda: (
                s.execute(
                    sa.select(t.clients).where(
                        t.clients.c.realm == realm, t.clients.c.client_id == client_id
                    )
                )
                .mappings()
                .first()
            ),
        )
        if row is None or row["status"] != Status.ACTIVE:
            raise OAuthError("invalid_client", "Invalid client or Invalid client credentials", 401)
        if row["secret_hash"] is not None:
            if not secret or not security.verify_secret(row["secret_hash"], secret):
                raise OAuthError(
                    "unauthorized_client", "Invalid client or Invalid client credentials", 401
                )
        return row

    # --- claims ---------------------------------------------------------------------------

    def _claims(
        self,
        s: Session,
        realm: str,
        user: Row,
        client: Row,
        scope: str,
        sid: str | None,
        ttl: int,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(access token claims, id token claims)."""
        now = int(time.time())
        grants = self._cached(
            ("grants", user["id"]),
            lambda: s.execute(
                sa.select(t.role_grants.c.role, t.role_grants.c.agency_code).where(
                    t.role_grants.c.user_id == user["id"]
                )
            ).all(),
        )
        roles = sorted({g.role for g in grants})
        per_agency: dict[str, list[str]] = {}
        for g in grants:
            per_agency.setdefault(g.agency_code or user["agency_code"] or "", []).append(g.role)
        aud = [LGSP_AUDIENCE] if realm == REALM else [f"{realm}-realm"]
        if client["client_id"] not in aud:
            aud.append(client["client_id"])
        base = {
            "iss": self.issuer(realm),
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
        if user["service_client_id"]:
            access["client_id"] = user["service_client_id"]
        ident = {**base, "jti": str(uuid.uuid4()), "aud": client["client_id"], "typ": "ID"}
        return access, ident

    def _response(
        self,
        s: Session,
        realm: str,
        user: Row,
        client: Row,
        scope: str,
        session_id: str | None,
        nonce: str = "",
    ) -> dict[str, Any]:
        ttl = client["token_ttl"] or self.access_ttl
        access, ident = self._claims(s, realm, user, client, scope, session_id, ttl)
        out: dict[str, Any] = {
            "access_token": self.keys.sign(access),
            "expires_in": ttl,
            "refresh_expires_in": 0,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": scope,
        }
        if session_id:
            refresh = security.new_secret()
            issued = time.time()
            s.execute(
                _RT_INSERT,
                {
                    "token_hash": security.hash_secret(refresh),
                    "session_id": session_id,
                    "issued_at": issued,
                    "expires_at": issued + REFRESH_TTL,
                },
            )
            out["refresh_token"] = refresh
            out["refresh_expires_in"] = REFRESH_TTL
            out["session_state"] = session_id
        if "openid" in scope.split():
            if nonce:
                ident["nonce"] = nonce
            out["id_token"] = self.keys.sign(ident)
        return out

    def _new_session(self, s: Session, realm: str, user_id: str, client_id: str, scope: str) -> str:
        sid, now = str(uuid.uuid4()), time.time()
        s.execute(
            _SESSION_INSERT,
            {
                "id": sid,
                "realm": realm,
                "user_id": user_id,
                "client_id": client_id,
                "scope": scope,
                "created_at": now,
                "expires_at": now + SESSION_TTL,
                "revoked_reason": "",
            },
        )
        return sid

    @staticmethod
    def _scope(requested: str, client: Row, default: str = "openid") -> str:
        words = [w for w in requested.split() if w] or default.split()
        allowed = {"openid", "profile", "email", "roles", "offline_access", *client["scopes"]}
        return " ".join(w for w in dict.fromkeys(words) if w in allowed)

    # --- logins (audited, evented) --------------------------------------------------------

    def _login_event(
        self,
        uow: UnitOfWork,
        *,
        ok: bool,
        realm: str,
        login_name: str,
        user_id: str,
        client_id: str,
        method: int,
        ctx: ClientContext,
        reason: int = 0,
        failures: int = 0,
    ) -> None:
        actor = Actor(id=user_id, realm=realm, remote_ip=ctx.remote_ip)
        Directory.audit(
            uow.session,
            actor,
            "login",
            user_id or login_name[:120],
            "ok"
            if ok
            else ev.LoginFailureReason.Name(ev.LoginFailureReason.ValueType(reason))
            .removeprefix("LOGIN_FAILURE_REASON_")
            .lower(),
            client_id=client_id,
            method=ev.LoginMethod.Name(ev.LoginMethod.ValueType(method)),
            login_name=login_name[:120],
        )
        if realm != REALM:
            return
        ua = ctx.user_agent[:256]
        if ok:
            msg: Any = ev.LoginSucceeded(
                subject=user_id,
                login_name=login_name,
                client_id=client_id,
                method=method,  # type: ignore[arg-type]
                remote_ip=ctx.remote_ip,
                user_agent=ua,
            )
        else:
            msg = ev.LoginFailed(
                login_name=login_name[:120],
                user_id=user_id,
                client_id=client_id,
                method=method,  # type: ignore[arg-type]
                reason=reason,  # type: ignore[arg-type]
                consecutive_failures=failures,
                remote_ip=ctx.remote_ip,
                user_agent=ua,
            )
        uow.emit(msg, subject=user_id or f"login:{login_name[:100]}")

    def _fail(
        self,
        realm: str,
        login_name: str,
        user: Row | None,
        client_id: str,
        ctx: ClientContext,
        reason: int,
        count: bool,
    ) -> None:
        """Record a refused sign-in; count it against the account (and lock it) if asked."""
        self.throttle.failed(ctx.remote_ip)
        with self._uow() as uow:
            s = uow.session
            failures = 0
            if user is not None and count:
                # Incremented in the database, not read then written: concurrent failures
                # (threads, replicas) each count, so parallel guesses cannot outrun the lock.
                failures = s.execute(
                    sa.update(t.users)
                    .where(t.users.c.id == user["id"])
                    .values(failed_logins=t.users.c.failed_logins + 1)
                    .returning(t.users.c.failed_logins)
                ).scalar_one()
                lock_until = self.directory.lockout.after_failure(failures, time.time())
                if lock_until is not None:
                    s.execute(
                        sa.update(t.users)
                        .where(t.users.c.id == user["id"])
                        .values(status=Status.LOCKED, locked_until=lock_until)
                    )
                if lock_until is not None and realm == REALM:
                    uow.emit(
                        ev.UserLocked(
                            user_id=user["id"], username=user["username"], failed_attempts=failures
                        ),
                        subject=user["id"],
                    )
            self._login_event(
                uow,
                ok=False,
                realm=realm,
                login_name=login_name,
                user_id=user["id"] if user else "",
                client_id=client_id,
                method=ev.LOGIN_METHOD_PASSWORD,
                ctx=ctx,
                reason=reason,
                failures=failures,
            )
            uow.commit()
        self._login_committed()

    def check_password(
        self,
        realm: str,
        username: str,
        password: str,
        totp: str,
        client_id: str,
        ctx: ClientContext,
    ) -> Row:
        """The account behind a username and password (and TOTP when enabled), or OAuthError.

        Per-address throttling first, then the per-account lock; every refusal is audited."""
        if self.throttle.blocked(ctx.remote_ip):
            raise OAuthError("invalid_grant", "Too many failed sign-ins from this address", 429)
        with Session(self.engine) as s:
            user = self.directory.find_user(s, realm, username) if username else None
        if user is not None and user["service_client_id"]:
            user = None  # service accounts never sign in with a password
        ok = security.verify_password(user["password_hash"] if user else None, password)
        if user is None:
            self._fail(
                realm,
                username,
                None,
                client_id,
                ctx,
                ev.LOGIN_FAILURE_REASON_UNKNOWN_ACCOUNT,
                False,
            )
            raise OAuthError("invalid_grant", "Invalid user credentials", 401)
        now = time.time()
        if user["status"] == Status.DISABLED:
            self._fail(
                realm, username, user, client_id, ctx, ev.LOGIN_FAILURE_REASON_DISABLED, False
            )
            raise OAuthError("invalid_grant", "Account disabled", 400)
        if user["status"] == Status.LOCKED and (user["locked_until"] or 0) > now:
            self._fail(realm, username, user, client_id, ctx, ev.LOGIN_FAILURE_REASON_LOCKED, False)
            raise OAuthError("invalid_grant", "Account is temporarily locked", 400)
        if not ok:
            self._fail(
                realm, username, user, client_id, ctx, ev.LOGIN_FAILURE_REASON_BAD_CREDENTIALS, True
            )
            raise OAuthError("invalid_grant", "Invalid user credentials", 401)
        if user["totp_secret"] and not security.verify_totp(user["totp_secret"], totp):
            self._fail(
                realm,
                username,
                user,
                client_id,
                ctx,
                ev.LOGIN_FAILURE_REASON_BAD_SECOND_FACTOR,
                True,
            )
            raise OAuthError("invalid_grant", "Invalid one-time code (totp)", 401)
        if user["agency_code"]:
            with Session(self.engine) as s:
                status = s.execute(
                    sa.select(t.agencies.c.status).where(t.agencies.c.code == user["agency_code"])
                ).scalar()
            if status == Status.DISABLED:
                self._fail(
                    realm, username, user, client_id, ctx, ev.LOGIN_FAILURE_REASON_DISABLED, False
                )
                raise OAuthError("invalid_grant", "Account disabled (agency dissolved)", 400)
        return user

    def _login_ok(self, uow: UnitOfWork, user: Row, password: str) -> None:
        values: dict[str, Any] = {"failed_logins": 0, "last_login_at": time.time()}
        if user["status"] == Status.LOCKED:
            values.update(status=Status.ACTIVE, locked_until=None)
        if user["password_hash"] and security.needs_rehash(user["password_hash"]):
            values["password_hash"] = security.hash_password(password)
        uow.session.execute(sa.update(t.users).where(t.users.c.id == user["id"]).values(**values))

    def password_grant(
        self,
        realm: str,
        client_id: str,
        secret: str | None,
        username: str,
        password: str,
        totp: str,
        scope: str,
        ctx: ClientContext,
    ) -> dict[str, Any]:
        if not username or not password:
            raise OAuthError("invalid_request", "Missing parameter: username and password")
        with Session(self.engine) as s:
            client = self.client(s, realm, client_id, secret)
        if not client["direct_grants"]:
            raise OAuthError("unauthorized_client", "Client not allowed for direct access grants")
        user = self.check_password(realm, username, password, totp, client_id, ctx)
        if user["password_temporary"]:
            raise OAuthError("invalid_grant", "Account is not fully set up (change the password)")
        with self._uow() as uow:
            s = uow.session
            scope = self._scope(scope, client)
            sid = self._new_session(s, realm, user["id"], client_id, scope)
            self._login_ok(uow, user, password)
            out = self._response(s, realm, user, client, scope, sid)
            self._login_event(
                uow,
                ok=True,
                realm=realm,
                login_name=user["username"],
                user_id=user["id"],
                client_id=client_id,
                method=ev.LOGIN_METHOD_PASSWORD,
                ctx=ctx,
            )
            uow.commit()
        self._login_committed()
        return out

    def client_credentials(
        self, realm: str, client_id: str, secret: str | None, scope: str, ctx: ClientContext
    ) -> dict[str, Any]:
        with self._uow() as uow:
            s = uow.session
            try:
                client = self.client(s, realm, client_id, secret)
                if client["secret_hash"] is None:
                    raise OAuthError(
                        "unauthorized_client", "Public client: no client credentials", 401
                    )
                if not client["service_user_id"]:
                    raise OAuthError(
                        "unauthorized_client", "Client not enabled to retrieve service account"
                    )
            except OAuthError as exc:
                uow.rollback()
                self._client_failure(realm, client_id, ctx, exc)
                raise
            user = self._cached(
                ("user", client["service_user_id"]),
                lambda: (
                    s.execute(sa.select(t.users).where(t.users.c.id == client["service_user_id"]))
                    .mappings()
                    .one()
                ),
            )
            # No id_token unless asked for: a client system is not a person signing in.
            scope = self._scope(scope or "", client, default="profile email")
            out = self._response(s, realm, user, client, scope, None)
            self._login_event(
                uow,
                ok=True,
                realm=realm,
                login_name=client_id,
                user_id=f"client:{client_id}",
                client_id=client_id,
                method=ev.LOGIN_METHOD_CLIENT_CREDENTIALS,
                ctx=ctx,
            )
            uow.commit()
        self._login_committed()
        return out

    def _client_failure(
        self, realm: str, client_id: str, ctx: ClientContext, exc: OAuthError
    ) -> None:
        self.throttle.failed(ctx.remote_ip)
        reason = (
            ev.LOGIN_FAILURE_REASON_UNKNOWN_ACCOUNT
            if exc.error == "invalid_client"
            else ev.LOGIN_FAILURE_REASON_BAD_CREDENTIALS
        )
        with self._uow() as uow:
            self._login_event(
                uow,
                ok=False,
                realm=realm,
                login_name=client_id[:120],
                user_id="",
                client_id=client_id[:120],
                method=ev.LOGIN_METHOD_CLIENT_CREDENTIALS,
                ctx=ctx,
                reason=reason,
            )
            uow.commit()
        self._login_committed()

    def refresh(
        self, realm: str, client_id: str, secret: str | None, token: str, ctx: ClientContext
    ) -> dict[str, Any]:
        if not token:
            raise OAuthError("invalid_request", "Missing parameter: refresh_token")
        reuse = False
        with self._uow() as uow:
            s = uow.session
            client = self.client(s, realm, client_id, secret)
            now = time.time()
            rt = (
                s.execute(_RT_WITH_SESSION, {"hash": security.hash_secret(token)})
                .mappings()
                .first()
            )
            if rt is None:
                raise OAuthError("invalid_grant", "Invalid refresh token")
            sess = {
                "id": rt["sid"],
                "user_id": rt["user_id"],
                "scope": rt["scope"],
                "revoked_at": rt["session_revoked_at"],
                "expires_at": rt["session_expires_at"],
            }
            if rt["client_id"] != client_id or rt["realm"] != realm:
                raise OAuthError(
                    "invalid_grant",
                    "Invalid refresh token. Token client and authorized client don't match",
                )
            if rt["used_at"] is not None:
                # A spent token came back: someone holds a copy. End the whole family.
                s.execute(
                    sa.update(t.sessions)
                    .where(t.sessions.c.id == sess["id"])
                    .values(revoked_at=now, revoked_reason="refresh token reuse")
                )
                Directory.audit(
                    s,
                    Actor(id=sess["user_id"], remote_ip=ctx.remote_ip),
                    "refresh.reuse",
                    sess["user_id"],
                    "session_revoked",
                    session=sess["id"],
                )
                uow.commit()
                reuse = True
            elif (
                sess["revoked_at"] is not None
                or sess["expires_at"] <= now
                or rt["expires_at"] <= now
            ):
                raise OAuthError("invalid_grant", "Session not active")
            else:
                user = self._cached(
                    ("user", sess["user_id"]),
                    lambda: (
                        s.execute(sa.select(t.users).where(t.users.c.id == sess["user_id"]))
                        .mappings()
                        .one()
                    ),
                )
                if user["status"] == Status.DISABLED:
                    raise OAuthError("invalid_grant", "Account disabled")
                spent = s.execute(_RT_SPEND, {"hash": rt["token_hash"], "spent_at": now}).rowcount  # type: ignore[attr-defined]
                if spent != 1:  # a concurrent refresh won the race
                    raise OAuthError("invalid_grant", "Invalid refresh token")
                out = self._response(s, realm, user, client, sess["scope"], sess["id"])
                # A session continuing, not a sign-in (no credential was presented): audited,
                # not published as LoginSucceeded (see docs/identity.md, "Passwords, logins").
                Directory.audit(
                    s,
                    Actor(id=user["id"], realm=realm, remote_ip=ctx.remote_ip),
                    "refresh",
                    user["id"],
                    client_id=client_id,
                    session=sess["id"],
                )
                uow.commit()
        if reuse:
            raise OAuthError("invalid_grant", "Refresh token reused: session revoked")
        return out

    # --- authorization code + PKCE --------------------------------------------------------

    def issue_code(
        self,
        realm: str,
        client: Row,
        user: Row,
        redirect_uri: str,
        challenge: str,
        method: str,
        scope: str,
        nonce: str,
        ctx: ClientContext,
    ) -> tuple[str, str]:
        """After a successful sign-in on the login page: (code, session id)."""
        code = security.new_secret()
        with self._uow() as uow:
            s = uow.session
            scope = self._scope(scope, client)
            sid = self._new_session(s, realm, user["id"], client["client_id"], scope)
            s.execute(
                sa.insert(t.auth_codes).values(
                    code_hash=security.hash_secret(code),
                    realm=realm,
                    client_id=client["client_id"],
                    user_id=user["id"],
                    redirect_uri=redirect_uri,
                    code_challenge=challenge,
                    challenge_method=method,
                    scope=scope,
                    nonce=nonce,
                    expires_at=time.time() + CODE_TTL,
                    session_id=sid,
                )
            )
            self._login_ok(uow, user, "")
            self._login_event(
                uow,
                ok=True,
                realm=realm,
                login_name=user["username"],
                user_id=user["id"],
                client_id=client["client_id"],
                method=ev.LOGIN_METHOD_PASSWORD,
                ctx=ctx,
            )
            uow.commit()
        self._login_committed()
        return code, sid

    def code_grant(
        self,
        realm: str,
        client_id: str,
        secret: str | None,
        code: str,
        redirect_uri: str,
        verifier: str,
    ) -> dict[str, Any]:
        if not code:
            raise OAuthError("invalid_request", "Missing parameter: code")
        replay = False
        with self._uow() as uow:
            s = uow.session
            client = self.client(s, realm, client_id, secret)
            row = (
                s.execute(
                    sa.select(t.auth_codes).where(
                        t.auth_codes.c.code_hash == security.hash_secret(code)
                    )
                )
                .mappings()
                .first()
            )
            now = time.time()
            if row is None or row["realm"] != realm or row["client_id"] != client_id:
                raise OAuthError("invalid_grant", "Code not valid")
            if row["used_at"] is not None:
                # RFC 6749 §4.1.2: a replayed code revokes what it issued.
                s.execute(
                    sa.update(t.sessions)
                    .where(t.sessions.c.id == row["session_id"])
                    .values(revoked_at=now, revoked_reason="authorization code replay")
                )
                Directory.audit(
                    s, Actor(id=row["user_id"]), "code.replay", row["user_id"], "session_revoked"
                )
                uow.commit()
                replay = True
            else:
                s.execute(
                    sa.update(t.auth_codes)
                    .where(t.auth_codes.c.code_hash == row["code_hash"])
                    .values(used_at=now)
                )
                uow.commit()  # spent even if the checks below fail: a code is tried once
        if replay:
            raise OAuthError("invalid_grant", "Code already used")
        if row["expires_at"] <= now:
            raise OAuthError("invalid_grant", "Code not valid")
        if redirect_uri != row["redirect_uri"]:
            raise OAuthError("invalid_grant", "Incorrect redirect_uri")
        if row["code_challenge"]:
            if not verifier:
                raise OAuthError("invalid_grant", "PKCE code verifier not specified")
            if not secrets.compare_digest(pkce_s256(verifier), row["code_challenge"]):
                raise OAuthError("invalid_grant", "PKCE verification failed")
        with self._uow() as uow:
            s = uow.session
            user = (
                s.execute(sa.select(t.users).where(t.users.c.id == row["user_id"])).mappings().one()
            )
            out = self._response(
                s, realm, user, client, row["scope"], row["session_id"], row["nonce"]
            )
            uow.commit()
        return out

    # --- checking tokens ------------------------------------------------------------------

    def verify(self, realm: str | None, token: str) -> dict[str, Any]:
        """Claims of a valid, unrevoked access token of this provider, else OAuthError."""
        try:
            decoded = jwt.decode(token, self.keys.keyset(), algorithms=["RS256"])
        except (JoseError, ValueError):
            raise OAuthError("invalid_token", "Token verification failed", 401) from None
        claims = dict(decoded.claims)
        now = time.time()
        iss = claims.get("iss", "")
        if realm is not None and iss != self.issuer(realm):
            raise OAuthError("invalid_token", "Token issued for another realm", 401)
        if not iss.startswith(f"{self.base_url}/realms/"):
            raise OAuthError("invalid_token", "Unknown issuer", 401)
        if (
            claims.get("typ") != "Bearer"
            or not isinstance(claims.get("exp"), int)
            or claims["exp"] <= now
        ):
            raise OAuthError("invalid_token", "Token is not active", 401)
        with Session(self.engine) as s:
            if s.execute(
                sa.select(t.revoked_tokens.c.jti).where(t.revoked_tokens.c.jti == claims.get("jti"))
            ).first():
                raise OAuthError("invalid_token", "Token revoked", 401)
            if claims.get("sid"):
                sess = s.execute(
                    sa.select(t.sessions.c.revoked_at, t.sessions.c.expires_at).where(
                        t.sessions.c.id == claims["sid"]
                    )
                ).first()
                if sess is None or sess.revoked_at is not None or sess.expires_at <= now:
                    raise OAuthError("invalid_token", "Session not active", 401)
            user = s.execute(
                sa.select(t.users.c.status).where(t.users.c.id == claims.get("sub"))
            ).first()
            if user is None or user.status == Status.DISABLED:
                raise OAuthError("invalid_token", "Account disabled", 401)
        return claims

    def introspect(
        self, realm: str, client_id: str, secret: str | None, token: str
    ) -> dict[str, Any]:
        with Session(self.engine) as s:
            client = self.client(s, realm, client_id, secret)
            if client["secret_hash"] is None:
                raise OAuthError("unauthorized_client", "Public clients may not introspect", 401)
        try:
            claims = self.verify(realm, token)
        except OAuthError:
            # Perhaps a refresh token.
            with Session(self.engine) as s:
                rt = (
                    s.execute(
                        sa.select(
                            t.refresh_tokens,
                            t.sessions.c.revoked_at,
                            t.sessions.c.client_id,
                            t.sessions.c.user_id,
                        )
                        .join(t.sessions, t.sessions.c.id == t.refresh_tokens.c.session_id)
                        .where(t.refresh_tokens.c.token_hash == security.hash_secret(token or ""))
                    )
                    .mappings()
                    .first()
                )
            now = time.time()
            if rt and rt["used_at"] is None and rt["revoked_at"] is None and rt["expires_at"] > now:
                return {
                    "active": True,
                    "token_type": "Refresh",
                    "typ": "Refresh",
                    "client_id": rt["client_id"],
                    "sub": rt["user_id"],
                    "exp": int(rt["expires_at"]),
                    "sid": rt["session_id"],
                }
            return {"active": False}
        return {
            **claims,
            "active": True,
            "client_id": claims.get("azp"),
            "username": claims.get("preferred_username"),
            "token_type": "Bearer",
        }

    def userinfo(self, realm: str, token: str) -> dict[str, Any]:
        claims = self.verify(realm, token)
        out: dict[str, Any] = {
            k: claims[k]
            for k in (
                "sub",
                "preferred_username",
                "name",
                "email",
                "given_name",
                "family_name",
                "agency_code",
            )
            if k in claims
        }
        out["email_verified"] = bool(claims.get("email"))
        return out

    def revoke(self, realm: str, client_id: str, secret: str | None, token: str) -> None:
        """RFC 7009: revoke an access token (its jti) or a refresh token (its session);
        unknown tokens are not an error."""
        with self._uow() as uow:
            s = uow.session
            self.client(s, realm, client_id, secret)
            rt = s.execute(
                sa.select(t.refresh_tokens.c.session_id).where(
                    t.refresh_tokens.c.token_hash == security.hash_secret(token)
                )
            ).first()
            if rt is not None:
                s.execute(
                    sa.update(t.sessions)
                    .where(t.sessions.c.id == rt.session_id)
                    .values(revoked_at=time.time(), revoked_reason="revoked")
                )
            else:
                try:
                    claims = self.verify(realm, token)
                except OAuthError:
                    return
                if claims.get("azp") == client_id:
                    s.execute(
                        sa.delete(t.revoked_tokens).where(
                            t.revoked_tokens.c.expires_at < time.time()
                        )
                    )
                    s.execute(
                        sa.insert(t.revoked_tokens).values(
                            jti=claims["jti"], expires_at=claims["exp"]
                        )
                    )
            uow.commit()

    def logout(self, realm: str, client_id: str, secret: str | None, refresh: str) -> None:
        with self._uow() as uow:
            s = uow.session
            self.client(s, realm, client_id, secret)
            rt = s.execute(
                sa.select(t.refresh_tokens.c.session_id, t.sessions.c.client_id)
                .join(t.sessions, t.sessions.c.id == t.refresh_tokens.c.session_id)
                .where(t.refresh_tokens.c.token_hash == security.hash_secret(refresh or ""))
            ).first()
            if rt is None or rt.client_id != client_id:
                raise OAuthError("invalid_grant", "Invalid refresh token")
            s.execute(
                sa.update(t.sessions)
                .where(t.sessions.c.id == rt.session_id)
                .values(revoked_at=time.time(), revoked_reason="logout")
            )
            uow.commit()

    def end_session(self, sid: str) -> None:
        with self._uow() as uow:
            uow.session.execute(
                sa.update(t.sessions)
                .where(t.sessions.c.id == sid)
                .values(revoked_at=time.time(), revoked_reason="logout")
            )
            uow.commit()


def actor_from_claims(claims: Mapping[str, Any], remote_ip: str = "") -> Actor:
    realm = str(claims.get("iss", "")).rsplit("/", 1)[-1]
    roles = frozenset(claims.get("realm_access", {}).get("roles", []))
    if realm == MASTER and "admin" not in roles:
        roles = frozenset()
    ident = (
        f"client:{claims['client_id']}" if claims.get("client_id") else str(claims.get("sub", ""))
    )
    return Actor(
        id=ident,
        roles=roles,
        realm=realm,
        remote_ip=remote_ip,
        name=str(claims.get("preferred_username", "")),
    )


_ = pb  # re-exported names used by callers' type hints
