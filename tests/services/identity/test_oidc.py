"""The OpenID Connect provider, driven by the unmodified python-keycloak client (and httpx
where a browser would act) against the running identity service."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import secrets
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from joserfc import jwt
from keycloak import KeycloakOpenID
from keycloak.exceptions import KeycloakAuthenticationError, KeycloakPostError

from services.identity.adapters import tables as t
from services.identity.domain.access import SYSTEM
from tests.services.identity.conftest import (
    OFFICIAL_PASSWORD,
    Running,
    demo_password,
    demo_secret,
    new_official,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


def oidc(run: Running, client_id: str, secret: str | None = None) -> KeycloakOpenID:
    return KeycloakOpenID(
        server_url=run.base_url, realm_name="lgsp", client_id=client_id, client_secret_key=secret
    )


def leader_username(run: Running) -> str:
    with run.identity.storage.session() as s:
        return str(
            s.execute(
                sa.select(t.users.c.username)
                .join(t.role_grants, t.role_grants.c.user_id == t.users.c.id)
                .where(t.role_grants.c.role == "leader", t.users.c.agency_code == "000.00.12.H27")
                .order_by(t.users.c.username)
            )
            .scalars()
            .first()
        )


def counts(run: Running) -> dict[str, int]:
    with run.identity.storage.session() as s:
        return {
            name: s.execute(sa.select(sa.func.count()).select_from(tbl)).scalar_one()
            for name, tbl in {
                "users": t.users,
                "agencies": t.agencies,
                "clients": t.clients,
                "grants": t.role_grants,
                "groups": t.groups,
            }.items()
        }


async def test_discovery_jwks_and_realm_public_key(demo: Running) -> None:
    kc = oidc(demo, "documents", demo_secret(demo, "documents"))
    wk = await asyncio.to_thread(kc.well_known)
    assert wk["issuer"] == f"{demo.base_url}/realms/lgsp"
    assert wk["jwks_uri"].endswith("/realms/lgsp/protocol/openid-connect/certs")
    assert "S256" in wk["code_challenge_methods_supported"]
    certs = await asyncio.to_thread(kc.certs)
    (key,) = certs["keys"]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["kid"]
    pem_b64 = await asyncio.to_thread(kc.public_key)
    assert base64.b64decode(pem_b64)  # DER SubjectPublicKeyInfo, as Keycloak publishes


async def test_password_grant_token_format_and_keycloak_decode(demo: Running) -> None:
    kc = oidc(demo, "documents", demo_secret(demo, "documents"))
    username = leader_username(demo)
    tok = await asyncio.to_thread(kc.token, username, demo_password(demo, username))
    assert tok["token_type"] == "Bearer" and tok["expires_in"] == 300
    assert tok["refresh_token"] and tok["id_token"]
    claims = await asyncio.to_thread(kc.decode_token, tok["access_token"])  # jwcrypto check
    assert claims["iss"] == f"{demo.base_url}/realms/lgsp"
    assert "lgsp" in claims["aud"] and claims["azp"] == "documents"
    assert claims["typ"] == "Bearer" and claims["sid"] == tok["session_state"]
    assert claims["preferred_username"] == username
    assert claims["agency_code"] == "000.00.12.H27"
    assert claims["realm_access"]["roles"] == ["leader"]
    assert claims["agency_roles"] == {"000.00.12.H27": ["leader"]}
    assert claims["exp"] - claims["iat"] == 300 and claims["jti"]
    header = jwt.decode(tok["access_token"], demo.identity.keys.keyset()).header
    assert header["alg"] == "RS256" and header["kid"] and header["typ"] == "JWT"
    info = await asyncio.to_thread(kc.userinfo, tok["access_token"])
    assert info["sub"] == claims["sub"] and info["name"] == claims["name"]


async def test_wrong_password_unknown_user_and_wrong_secret(demo: Running) -> None:
    kc = oidc(demo, "documents", demo_secret(demo, "documents"))
    _, username = await asyncio.to_thread(new_official, demo)
    failures_before = login_failures(demo)
    with pytest.raises(KeycloakAuthenticationError) as bad:
        await asyncio.to_thread(kc.token, username, "Sai-Mat-Khau-123")
    assert b"invalid_grant" in bad.value.response_body
    with pytest.raises(KeycloakAuthenticationError):
        await asyncio.to_thread(kc.token, "khong.ton.tai", "Doan-Mo-2025!")
    with pytest.raises(KeycloakAuthenticationError):
        await asyncio.to_thread(kc.token, "' OR 1=1 --", "Doan-Mo-2025!")
    wrong = oidc(demo, "documents", "not-the-secret")
    with pytest.raises(KeycloakAuthenticationError) as err:
        await asyncio.to_thread(wrong.token, grant_type="client_credentials")
    assert b"unauthorized_client" in err.value.response_body
    assert login_failures(demo) - failures_before == 4


def login_failures(run: Running) -> int:
    with run.identity.storage.session() as s:
        return int(
            s.execute(
                sa.select(sa.func.count())
                .select_from(t.audit_log)
                .where(t.audit_log.c.action == "login", t.audit_log.c.outcome != "ok")
            ).scalar_one()
        )


async def test_lockout_after_repeated_failures(demo: Running) -> None:
    kc = oidc(demo, "documents", demo_secret(demo, "documents"))
    uid, username = await asyncio.to_thread(new_official, demo)
    tok = await asyncio.to_thread(kc.token, username, OFFICIAL_PASSWORD)
    for _ in range(5):
        with pytest.raises(KeycloakAuthenticationError):
            await asyncio.to_thread(kc.token, username, "Sai-Mat-Khau-123")
    # Locked now: even the right password is refused, answered as a wrong one (issue 13.4).
    with pytest.raises(KeycloakAuthenticationError) as locked:
        await asyncio.to_thread(kc.token, username, OFFICIAL_PASSWORD)
    assert b"Invalid user credentials" in locked.value.response_body
    # An admin reset unlocks.
    await asyncio.to_thread(
        demo.identity.users.reset_password, SYSTEM, uid, "Mat-Khau-Moi-2025", False
    )
    tok = await asyncio.to_thread(kc.token, username, "Mat-Khau-Moi-2025")
    assert tok["access_token"]


async def test_address_throttle(demo: Running) -> None:
    from services.identity.domain.security import AddressThrottle

    saved = demo.identity.logins.throttle
    demo.identity.logins.throttle = AddressThrottle(limit=3)
    try:
        kc = oidc(demo, "documents", demo_secret(demo, "documents"))
        for i in range(3):
            with pytest.raises(KeycloakAuthenticationError):
                await asyncio.to_thread(kc.token, f"khong.co.{i}", "x")
        with pytest.raises(KeycloakPostError) as err:
            await asyncio.to_thread(
                kc.token, leader_username(demo), demo_password(demo, leader_username(demo))
            )
        assert err.value.response_code == 429
    finally:
        demo.identity.logins.throttle = saved


async def test_client_credentials_service_account(demo: Running) -> None:
    kc = oidc(demo, "motcua-thanhsen", demo_secret(demo, "motcua-thanhsen"))
    tok = await asyncio.to_thread(kc.token, grant_type="client_credentials")
    assert "refresh_token" not in tok  # no session: a client system asks again
    claims = await asyncio.to_thread(kc.decode_token, tok["access_token"])
    assert claims["client_id"] == "motcua-thanhsen"
    assert claims["preferred_username"] == "service-account-motcua-thanhsen"
    assert claims["agency_code"] == "000.00.61.H27"
    assert claims["agency_roles"] == {"000.00.61.H27": ["one_stop_officer"]}
    assert "sid" not in claims


async def test_refresh_rotation_and_reuse_revokes_family(demo: Running) -> None:
    kc = oidc(demo, "documents", demo_secret(demo, "documents"))
    first = await asyncio.to_thread(
        kc.token, leader_username(demo), demo_password(demo, leader_username(demo))
    )
    second = await asyncio.to_thread(kc.refresh_token, first["refresh_token"])
    assert second["refresh_token"] != first["refresh_token"]
    assert second["session_state"] == first["session_state"]
    third = await asyncio.to_thread(kc.refresh_token, second["refresh_token"])
    # Replaying a spent token ends the whole session: the newest tokens die too.
    with pytest.raises(KeycloakPostError) as err:
        await asyncio.to_thread(kc.refresh_token, first["refresh_token"])
    assert b"reused" in err.value.response_body
    with pytest.raises(KeycloakPostError):
        await asyncio.to_thread(kc.refresh_token, third["refresh_token"])
    info = await asyncio.to_thread(kc.introspect, third["access_token"])
    assert info == {"active": False}


async def test_introspection_revocation_and_logout(demo: Running) -> None:
    kc = oidc(demo, "documents", demo_secret(demo, "documents"))
    tok = await asyncio.to_thread(
        kc.token, leader_username(demo), demo_password(demo, leader_username(demo))
    )
    info = await asyncio.to_thread(kc.introspect, tok["access_token"])
    assert info["active"] is True and info["agency_code"] == "000.00.12.H27"
    assert (await asyncio.to_thread(kc.introspect, "garbage.token.here")) == {"active": False}
    # Introspection needs client credentials.
    with pytest.raises(KeycloakAuthenticationError):
        await asyncio.to_thread(oidc(demo, "documents", "wrong").introspect, tok["access_token"])
    await asyncio.to_thread(kc.logout, tok["refresh_token"])  # 204 expected by python-keycloak
    assert (await asyncio.to_thread(kc.introspect, tok["access_token"])) == {"active": False}
    # RFC 7009 revocation of a client-credentials access token.
    cc = await asyncio.to_thread(kc.token, grant_type="client_credentials")
    async with httpx.AsyncClient() as http:
        r = await http.post(
            f"{demo.base_url}/realms/lgsp/protocol/openid-connect/revoke",
            data={"token": cc["access_token"]},
            auth=("documents", demo_secret(demo, "documents")),
        )
    assert r.status_code == 200
    assert (await asyncio.to_thread(kc.introspect, cc["access_token"])) == {"active": False}


async def test_key_rotation_keeps_old_key_published(demo: Running) -> None:
    kc = oidc(demo, "documents", demo_secret(demo, "documents"))
    before = await asyncio.to_thread(kc.token, grant_type="client_credentials")
    old_kid = (await asyncio.to_thread(kc.certs))["keys"][0]["kid"]
    new_kid = await asyncio.to_thread(demo.identity.keys.rotate)
    kids = [k["kid"] for k in (await asyncio.to_thread(kc.certs))["keys"]]
    assert kids == [new_kid, old_kid]
    after = await asyncio.to_thread(kc.token, grant_type="client_credentials")
    for tok in (before, after):
        await asyncio.to_thread(kc.decode_token, tok["access_token"])  # both still verify
    header = jwt.decode(after["access_token"], demo.identity.keys.keyset()).header
    assert header["kid"] == new_kid


@pytest.mark.asyncio(loop_scope="function")
async def test_keys_survive_restart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.services.identity.conftest import start_identity

    rt, _, base = await start_identity(tmp_path)
    async with httpx.AsyncClient() as http:
        first = (await http.get(f"{base}/realms/lgsp/protocol/openid-connect/certs")).json()
    await rt.stop(grace=1)
    rt, _ident, base = await start_identity(tmp_path)
    try:
        async with httpx.AsyncClient() as http:
            again = (await http.get(f"{base}/realms/lgsp/protocol/openid-connect/certs")).json()
    finally:
        await rt.stop(grace=1)
    assert again == first


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.decode().rstrip("=")


async def login_form(http: httpx.AsyncClient, auth_url: str, params: dict[str, str]) -> str:
    """GET the login page (its cookie lands in `http`); the form's anti-forgery token."""
    page = await http.get(auth_url, params=params)
    assert page.status_code == 200 and "lgsp_login" in page.headers["set-cookie"]
    found = re.search(r'name="form_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


async def test_authorization_code_with_pkce_login_page(demo: Running) -> None:
    redirect = "http://127.0.0.1:8100/callback"
    verifier, challenge = pkce()
    auth_url = f"{demo.base_url}/realms/lgsp/protocol/openid-connect/auth"
    params = {
        "client_id": "lgsp-web",
        "redirect_uri": redirect,
        "response_type": "code",
        "scope": "openid",
        "state": "xyz",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    before = counts(demo)
    async with httpx.AsyncClient() as http:
        page = await http.get(auth_url, params=params)
        assert page.status_code == 200 and "Đăng nhập" in page.text and "Mật khẩu" in page.text
        form = {**params, "form_token": await login_form(http, auth_url, params)}
        bad = await http.post(auth_url, data={**form, "username": "x", "password": "y"})
        assert bad.status_code == 401 and "không đúng" in bad.text
        ok = await http.post(
            auth_url,
            data={
                **form,
                "username": leader_username(demo),
                "password": demo_password(demo, leader_username(demo)),
            },
        )
        assert ok.status_code == 302
        loc = urlsplit(ok.headers["location"])
        assert f"{loc.scheme}://{loc.netloc}{loc.path}" == redirect
        q = parse_qs(loc.query)
        assert q["state"] == ["xyz"]
        code = q["code"][0]
    kc = oidc(demo, "lgsp-web")
    # PKCE mismatch: refused, and the code is spent.
    with pytest.raises(KeycloakPostError) as mismatch:
        await asyncio.to_thread(
            kc.token,
            grant_type="authorization_code",
            code=code,
            redirect_uri=redirect,
            code_verifier="wrong-" + verifier,
        )
    assert b"PKCE" in mismatch.value.response_body
    async with httpx.AsyncClient() as http:
        form = {**params, "form_token": await login_form(http, auth_url, params)}
        ok = await http.post(
            auth_url,
            data={
                **form,
                "username": leader_username(demo),
                "password": demo_password(demo, leader_username(demo)),
            },
        )
    code = parse_qs(urlsplit(ok.headers["location"]).query)["code"][0]
    tok = await asyncio.to_thread(
        kc.token,
        grant_type="authorization_code",
        code=code,
        redirect_uri=redirect,
        code_verifier=verifier,
    )
    assert tok["access_token"] and tok["id_token"]
    # Replay: refused, and the session the code produced is revoked.
    with pytest.raises(KeycloakPostError) as replay:
        await asyncio.to_thread(
            kc.token,
            grant_type="authorization_code",
            code=code,
            redirect_uri=redirect,
            code_verifier=verifier,
        )
    assert b"already used" in replay.value.response_body
    conf = oidc(demo, "documents", demo_secret(demo, "documents"))
    assert (await asyncio.to_thread(conf.introspect, tok["access_token"])) == {"active": False}
    assert counts(demo) == before


async def test_forged_login_post_is_refused(demo: Running) -> None:
    """A sign-in POST without the page's anti-forgery token and cookie (what a form on another
    site can send) is refused before the credentials are looked at."""
    auth_url = f"{demo.base_url}/realms/lgsp/protocol/openid-connect/auth"
    _, challenge = pkce()
    params = {
        "client_id": "lgsp-web",
        "redirect_uri": "http://127.0.0.1:8100/callback",
        "response_type": "code",
        "scope": "openid",
        "state": "s1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    creds = {
        "username": leader_username(demo),
        "password": demo_password(demo, leader_username(demo)),
    }
    logins_before = logins(demo)
    async with httpx.AsyncClient() as victim:
        token = await login_form(victim, auth_url, params)
        other = {**params, "state": "attacker"}  # a token is bound to its request
        async with httpx.AsyncClient() as attacker:
            attacker_token = await login_form(attacker, auth_url, params)
            forged = [
                await victim.post(auth_url, data={**params, **creds}),  # no token
                await victim.post(auth_url, data={**params, **creds, "form_token": "1.abc"}),
                await victim.post(auth_url, data={**other, **creds, "form_token": token}),
                # The attacker's own token does not go with the victim's cookie…
                await victim.post(auth_url, data={**params, **creds, "form_token": attacker_token}),
                # …and the victim's token is useless without the victim's cookie.
                await attacker.post(auth_url, data={**params, **creds, "form_token": token}),
            ]
    for r in forged:
        assert r.status_code == 403 and "location" not in r.headers
        assert "Phiên đăng nhập đã hết hạn hoặc yêu cầu không hợp lệ" in r.text
        assert 'name="form_token"' in r.text  # a fresh form to sign in from
    assert logins(demo) == logins_before  # no sign-in was attempted


def logins(run: Running) -> int:
    with run.identity.storage.session() as s:
        return int(
            s.execute(
                sa.select(sa.func.count())
                .select_from(t.audit_log)
                .where(t.audit_log.c.action == "login")
            ).scalar_one()
        )


@pytest.mark.parametrize(
    "redirect",
    ["https://evil.example/cb", "http://127.0.0.1:8100.evil.example/cb", "javascript:alert(1)", ""],
)
async def test_open_redirects_refused_without_redirecting(demo: Running, redirect: str) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.get(
            f"{demo.base_url}/realms/lgsp/protocol/openid-connect/auth",
            params={
                "client_id": "lgsp-web",
                "redirect_uri": redirect,
                "response_type": "code",
                "code_challenge": pkce()[1],
                "code_challenge_method": "S256",
            },
        )
    assert r.status_code == 400 and "location" not in r.headers
    assert "chuyển hướng không hợp lệ" in r.text


async def test_public_client_needs_pkce(demo: Running) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.get(
            f"{demo.base_url}/realms/lgsp/protocol/openid-connect/auth",
            params={
                "client_id": "lgsp-web",
                "redirect_uri": "http://127.0.0.1:8100/callback",
                "response_type": "code",
                "state": "s",
            },
        )
    assert r.status_code == 302
    assert re.search(r"error=invalid_request", r.headers["location"])


async def test_totp_second_factor(demo: Running) -> None:
    import pyotp

    d = demo.identity.users
    uid, username = await asyncio.to_thread(new_official, demo, ("admin",))
    secret = await asyncio.to_thread(d.set_totp, SYSTEM, uid, True)
    kc = oidc(demo, "documents", demo_secret(demo, "documents"))
    with pytest.raises(KeycloakAuthenticationError):
        await asyncio.to_thread(kc.token, username, OFFICIAL_PASSWORD)
    code = pyotp.TOTP(secret).now()
    tok = await asyncio.to_thread(kc.token, username, OFFICIAL_PASSWORD, totp=code)
    assert tok["access_token"]


async def test_login_events_reach_the_outbox(demo: Running) -> None:
    kc = oidc(demo, "documents", demo_secret(demo, "documents"))
    await asyncio.to_thread(
        kc.token, leader_username(demo), demo_password(demo, leader_username(demo))
    )
    with pytest.raises(KeycloakAuthenticationError):
        await asyncio.to_thread(kc.token, leader_username(demo), "Sai-Mat-Khau-1")
    from lgsp.db import outbox_table

    with demo.identity.storage.session() as s:
        types = s.execute(sa.select(outbox_table.c.event_type, outbox_table.c.topic)).all()
    assert ("lgsp.api.identity.v1.LoginSucceeded", "lgsp.identity.v1") in types
    assert ("lgsp.api.identity.v1.LoginFailed", "lgsp.identity.v1") in types
    assert ("lgsp.api.identity.v1.UserCreated", "lgsp.identity.v1") in types
