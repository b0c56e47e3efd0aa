"""Signing keys: RSA keys persisted in the identity DB so restarts keep their kids.

The newest key signs; older keys stay in the JWKS until every token they signed has expired
(retired_at + MAX_ACCESS_TTL), then drop out. The login form's anti-forgery keys are derived
from them, so every replica shares those without another secret."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from services.identity.adapters.keys import KeyRepository
from services.identity.adapters.unit_of_work import Storage
from services.identity.domain.sessions import MAX_ACCESS_TTL, b64url


def _generate(keys: KeyRepository) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    keys.add(b64url(secrets.token_bytes(16)), pem, time.time())


class KeyStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._lock = threading.Lock()
        self._loaded_at = 0.0
        self._current: RSAKey | None = None
        self._published: list[RSAKey] = []
        self._form_keys: list[bytes] = []

    def _rows(self) -> list[Any]:
        with self.storage.read() as r:
            return r.keys.newest_first()

    def load(self, force: bool = False) -> None:
        if not force and time.time() - self._loaded_at < 30:
            return
        with self._lock:
            rows = self._rows()
            if not rows:
                with self.storage.key_change() as uow:
                    if not uow.repos.keys.any():
                        _generate(uow.repos.keys)
                    uow.commit()
                rows = self._rows()
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
        with self.storage.key_change() as uow:
            uow.repos.keys.retire_current(time.time())
            _generate(uow.repos.keys)
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
        """HMAC keys for the login form's anti-forgery token; the first one signs."""
        self.load()
        return self._form_keys

    def sign(self, claims: dict[str, Any], typ: str = "JWT") -> str:
        key = self.current
        return jwt.encode({"alg": "RS256", "typ": typ, "kid": key.kid}, claims, key)
