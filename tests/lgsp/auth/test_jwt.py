"""JwtAuthenticator: what it accepts, and each refusal on its own."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time

import pytest
from cryptography.hazmat.primitives import serialization

from lgsp.auth import Principal
from lgsp.authn import HttpIntrospector, JwtAuthenticator
from lgsp.grpc.errors import Unauthenticated, Unavailable
from tests.support.issuer import INTROSPECT_CLIENT, FakeIssuer

PLAIN = "/lgsp.test.v1.TestService/WhoAmI"
SENSITIVE = "/lgsp.test.v1.TestService/Fail"


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, object], claims: dict[str, object], signature: bytes = b"") -> str:
    return ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()), b64(signature)]
    )


async def refused(authn: JwtAuthenticator, token: str, method: str = PLAIN) -> str:
    with pytest.raises(Unauthenticated) as caught:
        await authn.authenticate(bearer(token), method)
    message = caught.value.message
    assert token not in message and token[-20:] not in message  # never echoes the token
    return message


# --- accepted -----------------------------------------------------------------------------


async def test_valid_user_token_gives_the_principal(issuer: FakeIssuer, authn) -> None:
    token = issuer.token()
    p = await authn.authenticate(bearer(token), PLAIN)
    assert p.kind == "user"
    assert p.subject == "7f1c2a9e-0000-4000-8000-000000000001"
    assert p.username == "nguyenvanan.stp"
    assert p.client_id == "lgsp-web"
    assert p.agency_code == "000.00.12.H27"
    assert p.roles == {"specialist", "leader"}
    assert dict(p.grants) == {"000.00.12.H27": frozenset({"specialist", "leader"})}
    assert p.claims["email"] == "nvan@hatinh.gov.vn"
    assert p.scopes == {"openid", "profile", "email"}
    assert p.token == token and token not in repr(p)
    with pytest.raises(TypeError):
        p.claims["sub"] = "someone else"  # type: ignore[index]
    assert issuer.jwks_hits == 1


async def test_client_credentials_token_is_a_client(issuer: FakeIssuer, authn) -> None:
    p = await authn.authenticate(bearer(issuer.client_token("dvc-hatinh")), PLAIN)
    assert p.kind == "client" and p.is_client
    assert p.client_id == "dvc-hatinh"
    assert p.agency_code == "000.00.00.H27"
    assert p.has_role("operator", "000.00.00.H27")


async def test_jwks_is_cached_across_calls(issuer: FakeIssuer, authn) -> None:
    for _ in range(5):
        await authn.authenticate(bearer(issuer.token()), PLAIN)  # distinct tokens (jti)
    assert issuer.jwks_hits == 1


async def test_audience_as_a_string_and_small_clock_skew_are_accepted(
    issuer: FakeIssuer, authn
) -> None:
    now = int(time.time())
    await authn.authenticate(bearer(issuer.token(aud="lgsp")), PLAIN)
    await authn.authenticate(bearer(issuer.token(exp=now - 10)), PLAIN)  # within 30 s leeway
    await authn.authenticate(bearer(issuer.token(nbf=now + 10)), PLAIN)


async def test_es256_key_is_accepted(issuer: FakeIssuer, authn) -> None:
    issuer.add_key("ec1", "EC")
    p = await authn.authenticate(bearer(issuer.token()), PLAIN)
    assert p.username == "nguyenvanan.stp"


async def test_ps256_with_an_rsa_key_is_accepted(issuer: FakeIssuer, authn) -> None:
    await authn.authenticate(bearer(issuer.token(alg="PS256")), PLAIN)


# --- refused, one reason each ---------------------------------------------------------------


async def test_alg_none_is_refused(issuer: FakeIssuer, authn) -> None:
    token = unsigned({"alg": "none", "kid": "k1", "typ": "JWT"}, issuer.claims())
    assert "algorithm" in await refused(authn, token)
    token = unsigned({"alg": "none", "typ": "JWT"}, issuer.claims())
    assert "algorithm" in await refused(authn, token)


async def test_hs256_signed_with_the_public_key_is_refused(issuer: FakeIssuer, authn) -> None:
    # The classic confusion attack: HMAC keyed with the RSA public key everyone can fetch.
    await authn.authenticate(bearer(issuer.token()), PLAIN)  # the JWKS is loaded
    pem = (
        issuer.key("k1")
        .get_op_key("verify")
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = {"alg": "HS256", "kid": "k1", "typ": "JWT"}
    signing_input = ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(issuer.claims()).encode())]
    )
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    assert "algorithm" in await refused(authn, f"{signing_input}.{b64(signature)}")


async def test_token_alg_must_match_its_key_type(issuer: FakeIssuer, authn) -> None:
    issuer.add_key("ec1", "EC", sign_with=False)
    await authn.authenticate(bearer(issuer.token()), PLAIN)
    # An RS256 header naming the EC key: refused before any verification is tried.
    token = issuer.token(kid="k1").split(".")
    header = {"alg": "RS256", "kid": "ec1", "typ": "JWT"}
    forged = ".".join([b64(json.dumps(header).encode()), token[1], token[2]])
    assert "algorithm" in await refused(authn, forged)


async def test_expired_token_is_refused(issuer: FakeIssuer, authn) -> None:
    now = int(time.time())
    assert "expired" in await refused(authn, issuer.token(exp=now - 120, iat=now - 600))


async def test_token_without_exp_is_refused(issuer: FakeIssuer, authn) -> None:
    assert "exp" in await refused(authn, issuer.token(exp=None))


async def test_not_yet_valid_token_is_refused(issuer: FakeIssuer, authn) -> None:
    now = int(time.time())
    assert "not yet valid" in await refused(authn, issuer.token(nbf=now + 120, exp=now + 600))


async def test_wrong_issuer_is_refused(issuer: FakeIssuer, authn) -> None:
    assert "issuer" in await refused(authn, issuer.token(iss="http://127.0.0.1:1/realms/lgsp"))
    assert "issuer" in await refused(authn, issuer.token(iss=issuer.issuer + "/"))


async def test_wrong_audience_is_refused(issuer: FakeIssuer, authn) -> None:
    assert "audience" in await refused(authn, issuer.token(aud=["account"]))
    assert "audience" in await refused(authn, issuer.token(aud=None))


async def test_id_token_is_not_an_access_token(issuer: FakeIssuer, authn) -> None:
    assert "access token" in await refused(authn, issuer.token(typ="ID"))


async def test_tampered_signature_is_refused(issuer: FakeIssuer, authn) -> None:
    header, payload, signature = issuer.token().split(".")
    flipped = b64(bytes(b ^ 1 for b in base64.urlsafe_b64decode(signature + "==")))
    assert "signature" in await refused(authn, f"{header}.{payload}.{flipped}")


async def test_tampered_claims_are_refused(issuer: FakeIssuer, authn) -> None:
    header, _, signature = issuer.token().split(".")
    claims = issuer.claims(agency_roles={"000.00.00.H27": ["admin"]})
    payload = b64(json.dumps(claims).encode())
    assert "signature" in await refused(authn, f"{header}.{payload}.{signature}")


async def test_signed_by_another_key_with_a_known_kid_is_refused(issuer: FakeIssuer, authn) -> None:
    other = FakeIssuer()  # same kid "k1", different key
    assert "signature" in await refused(authn, other.token())


@pytest.mark.parametrize(
    "metadata, reason",
    [
        ({}, "missing"),
        ({"authorization": ""}, "missing"),
        ({"authorization": "Basic dXNlcjpwYXNz"}, "bearer"),
        ({"authorization": "Bearer"}, "bearer"),
        ({"authorization": "Bearer not-a-jwt"}, "malformed"),
        ({"authorization": "Bearer a.b.c"}, "malformed"),
        ({"authorization": "Bearer " + "x" * 20_000}, "malformed"),
    ],
)
async def test_missing_or_malformed_credentials_are_refused(
    issuer: FakeIssuer, authn, metadata: dict[str, str], reason: str
) -> None:
    with pytest.raises(Unauthenticated) as caught:
        await authn.authenticate(metadata, PLAIN)
    assert reason in caught.value.message
    assert issuer.jwks_hits == 0  # rejected before asking the provider anything


# --- keys: unknown kid, rotation, provider down ---------------------------------------------


async def test_unknown_kid_refreshes_once_then_refuses(issuer: FakeIssuer, authn) -> None:
    await authn.authenticate(bearer(issuer.token()), PLAIN)
    assert issuer.jwks_hits == 1
    stranger = FakeIssuer()
    stranger.keys[0] = stranger.keys[0].__class__.generate_key(2048, parameters={"kid": "k9"})
    stranger.signing_kid = "k9"
    assert "unknown key" in await refused(authn, stranger.token())
    assert issuer.jwks_hits == 2


async def test_a_flood_of_unknown_kids_cannot_hammer_the_provider(issuer: FakeIssuer) -> None:
    authn = JwtAuthenticator(issuer.issuer, min_refresh_interval_s=60.0)
    try:
        await authn.authenticate(bearer(issuer.token()), PLAIN)
        header = issuer.token().split(".")
        for i in range(50):
            forged = {"alg": "RS256", "kid": f"random-{i}", "typ": "JWT"}
            token = ".".join([b64(json.dumps(forged).encode()), header[1], header[2]])
            with pytest.raises(Unauthenticated):
                await authn.authenticate(bearer(token), PLAIN)
        assert issuer.jwks_hits == 1  # within the interval: no refresh at all
    finally:
        await authn.aclose()


async def test_concurrent_first_calls_share_one_jwks_fetch(issuer: FakeIssuer, authn) -> None:
    tokens = [issuer.token() for _ in range(20)]
    await asyncio.gather(*(authn.authenticate(bearer(t), PLAIN) for t in tokens))
    assert issuer.jwks_hits == 1


async def test_key_rotation(issuer: FakeIssuer, authn) -> None:
    old_token = issuer.token()
    await authn.authenticate(bearer(old_token), PLAIN)
    issuer.add_key("k2")  # the provider rotates: k2 signs, k1 still published
    new_token = issuer.token()
    p = await authn.authenticate(bearer(new_token), PLAIN)
    assert p.subject and issuer.jwks_hits == 2
    await authn.authenticate(bearer(old_token), PLAIN)  # still accepted
    await authn.authenticate(bearer(issuer.token(kid="k1")), PLAIN)
    assert issuer.jwks_hits == 2
    # k1 retired: once the cache learns it, tokens signed with k1 are refused.
    issuer.drop_key("k1")
    issuer.add_key("k3")
    await authn.authenticate(bearer(issuer.token()), PLAIN)  # unknown k3 → refresh
    assert "unknown key" in await refused(authn, old_token)


async def test_provider_down_at_first_call_is_unavailable(issuer: FakeIssuer, authn) -> None:
    issuer.jwks_down = True
    with pytest.raises(Unavailable):
        await authn.authenticate(bearer(issuer.token()), PLAIN)


async def test_provider_down_later_keeps_known_keys(issuer: FakeIssuer, authn) -> None:
    await authn.authenticate(bearer(issuer.token()), PLAIN)
    issuer.jwks_down = True
    await authn.authenticate(bearer(issuer.token()), PLAIN)
    issuer.add_key("k2")
    assert "unknown key" in await refused(authn, issuer.token())


# --- the verified-token cache re-checks time -------------------------------------------------


async def test_remembered_token_still_expires(issuer: FakeIssuer) -> None:
    now = [time.time()]
    authn = JwtAuthenticator(issuer.issuer, leeway_s=0, clock=lambda: now[0])
    try:
        token = issuer.token(exp=int(now[0]) + 60)
        await authn.authenticate(bearer(token), PLAIN)
        await authn.authenticate(bearer(token), PLAIN)  # remembered
        now[0] += 120
        assert "expired" in await refused(authn, token)
    finally:
        await authn.aclose()


# --- introspection for sensitive methods --------------------------------------------------


async def test_revoked_token_is_refused_on_sensitive_methods(issuer: FakeIssuer, authn) -> None:
    token = issuer.token()
    await authn.authenticate(bearer(token), SENSITIVE)
    assert issuer.introspection_hits == 1
    issuer.revoked.add(token)
    authn.introspection._answers.clear()  # skip the few-second answer cache
    assert "revoked" in await refused(authn, token, SENSITIVE)
    # A non-sensitive call trusts the signature alone (no introspection round trip).
    hits = issuer.introspection_hits
    await authn.authenticate(bearer(token), PLAIN)
    assert issuer.introspection_hits == hits
    # A whole service can be sensitive.
    assert "revoked" in await refused(authn, token, "/lgsp.sensitive.v1.Admin/DeleteUser")


async def test_introspection_answers_are_cached_briefly(issuer: FakeIssuer) -> None:
    now = [1000.0]
    introspector = HttpIntrospector(
        f"{issuer.issuer}/protocol/openid-connect/token/introspect",
        client_id=INTROSPECT_CLIENT[0],
        client_secret=INTROSPECT_CLIENT[1],
        auth_method="client_secret_post",
        cache_ttl_s=5,
        clock=lambda: now[0],
    )
    try:
        token = issuer.token()
        assert await introspector.is_active(token)
        issuer.revoked.add(token)
        assert await introspector.is_active(token)  # cached answer
        assert issuer.introspection_hits == 1
        now[0] += 6
        assert not await introspector.is_active(token)
        assert issuer.introspection_hits == 2
    finally:
        await introspector.aclose()


async def test_introspection_with_bad_client_credentials_fails_closed(issuer: FakeIssuer) -> None:
    introspector = HttpIntrospector(
        f"{issuer.issuer}/protocol/openid-connect/token/introspect",
        client_id="documents",
        client_secret="wrong",
    )
    authn = JwtAuthenticator(
        issuer.issuer, introspection=introspector, sensitive_methods=[SENSITIVE]
    )
    try:
        with pytest.raises(Unavailable):
            await authn.authenticate(bearer(issuer.token()), SENSITIVE)
    finally:
        await authn.aclose()


async def test_introspection_down_fails_closed(issuer: FakeIssuer, authn) -> None:
    issuer.introspection_down = True
    with pytest.raises(Unavailable):
        await authn.authenticate(bearer(issuer.token()), SENSITIVE)
    await authn.authenticate(bearer(issuer.token()), PLAIN)


def test_sensitive_methods_need_an_introspector() -> None:
    with pytest.raises(ValueError):
        JwtAuthenticator("http://127.0.0.1:1/realms/lgsp", sensitive_methods=[SENSITIVE])


def test_principal_type_is_unchanged_for_existing_callers() -> None:
    p = Principal(subject="u1", kind="user", agency_code="A", roles=frozenset({"clerk"}))
    assert p.has_role("clerk") and not p.has_role("leader")
    assert p.has_role("clerk", "A")  # no grants: the roles hold in the own agency
    assert hash(p) == hash(
        Principal(subject="u1", kind="user", agency_code="A", roles=frozenset({"clerk"}))
    )
