"""private_key_jwt client authentication (RFC 7523 §2.2, OpenID Connect Core §9): the client
signs a short JWT (iss = sub = its client id, aud = this realm's issuer or token endpoint,
exp, jti) with a key whose public half it registered (clients.jwks). Verified with authlib's
JWTBearerClientAssertion (the signature, the claims, leeway); what authlib leaves to the
server is here: finding the client and its keys, the audiences, and refusing a jti seen
before (remembered in revoked_tokens until the assertion expires, as revoked access tokens
are)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc.jwk import KeySet

from services.identity.adapters.unit_of_work import Storage
from services.identity.domain import security
from services.identity.domain import sessions as rules
from services.identity.domain.errors import ClientNotAuthenticated
from services.identity.domain.model import Status
from services.identity.service_layer.cache import Asserted

ASSERTION_TYPE = JWTBearerClientAssertion.CLIENT_ASSERTION_TYPE
MAX_ASSERTION_LIFE = 600  # an assertion valid longer than this is refused (replay window)


class _Client:
    def __init__(self, row: Any) -> None:
        self.row = row

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return bool(self.row["jwks"])


class _Assertion(JWTBearerClientAssertion):
    def __init__(self, storage: Storage, audiences: list[str]) -> None:
        super().__init__(validate_jti=True, leeway=30)
        self.storage = storage
        self.audiences = audiences

    def get_audiences(self) -> list[str]:
        return self.audiences

    def resolve_client_public_key(self, client: _Client) -> KeySet:
        return KeySet.import_key_set(_public_jwks(client.row["jwks"]))

    def validate_jti(self, claims: Any, jti: Any) -> bool:
        exp, now = claims.get("exp"), time.time()
        if not isinstance(jti, str) or not isinstance(exp, int) or exp > now + MAX_ASSERTION_LIFE:
            return False
        key = security.hash_secret(f"{claims['sub']}\0{jti}")
        with self.storage.token_change() as uow:
            if uow.repos.sessions.is_revoked(key):
                return False
            uow.repos.sessions.revoke_access(key, exp, now)  # seen: never again
            uow.commit()
        return True


def _public_jwks(text: str) -> Any:
    import json

    return json.loads(text)


def check_jwks(text: str) -> str:
    """A client's registered keys: a JWK Set of public signing keys (RSA or EC)."""
    import json

    from services.identity.domain.errors import Invalid

    try:
        data = json.loads(text)
        keys = KeySet.import_key_set(data)
    except Exception:  # joserfc and json raise many kinds for a malformed set
        raise Invalid("jwks.string", "is not a JWK Set") from None
    if not keys.keys or len(text) > 20_000:
        raise Invalid("jwks.string", "needs 1 to a few public keys")
    for k in keys.keys:
        if k.key_type not in ("RSA", "EC") or k.is_private:
            raise Invalid("jwks.string", "only public RSA or EC keys")
    return json.dumps(data, separators=(",", ":"))


class ClientAssertions:
    def __init__(self, storage: Storage, base_url: str) -> None:
        self.storage = storage
        self.base_url = base_url

    def authenticate(self, realm: str, form: dict[str, str]) -> tuple[str, Asserted]:
        """(client id, Asserted) for a valid private_key_jwt assertion, else
        ClientNotAuthenticated (the reason is logged by authlib at debug level only)."""
        iss = rules.issuer(self.base_url, realm)
        verifier = _Assertion(self.storage, [iss, f"{iss}/protocol/openid-connect/token"])

        def query_client(client_id: str) -> _Client | None:
            with self.storage.read() as r:
                row = r.clients.get(realm, client_id)
            if row is None or row["status"] != Status.ACTIVE or not row["jwks"]:
                return None
            return _Client(row)

        request = SimpleNamespace(form=form, client=None)
        try:
            client = verifier(query_client, request)
        except InvalidClientError:
            client = None
        if client is None:
            raise ClientNotAuthenticated("Invalid client or Invalid client credentials")
        client_id = str(client.row["client_id"])
        return client_id, Asserted(client_id)
