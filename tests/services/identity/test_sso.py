"""Issue 19 item 1: the SSO session, as a browser (httpx following redirects, with its cookie
jar) and the applications (python-keycloak, and a real HTTP server standing for them: their
callbacks and their back-channel logout endpoint) meet it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
import pytest
import pytest_asyncio
import sqlalchemy as sa
from joserfc import jwt
from keycloak import KeycloakOpenID
from keycloak.exceptions import KeycloakAuthenticationError, KeycloakPostError

from lgsp.api.identity.v1 import identity_pb2 as pb
from lgsp.db import outbox_table
from services.identity.adapters import tables as t
from services.identity.domain.access import SYSTEM
from services.identity.service_layer.sso import BACKCHANNEL_EVENT
from tests.fixtures import free_port
from tests.services.identity.conftest import Running, start_identity
from tests.services.identity.test_oidc import pkce

pytestmark = pytest.mark.asyncio(loop_scope="module")

JUSTICE = "000.00.12.H27"
PASSWORD = "Chuyen-Vien-2025!"


@dataclass
class RelyingParty:
    """The applications' side: callbacks (GET) and back-channel logout (POST) on one port."""

    base: str
    callbacks: list[dict[str, list[str]]] = field(default_factory=list)
    logout_tokens: list[tuple[str, str]] = field(default_factory=list)  # (path, token)


@pytest.fixture(scope="module")
def rp() -> Iterator[RelyingParty]:
    port = free_port()
    party = RelyingParty(f"http://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            party.callbacks.append(parse_qs(urlsplit(self.path).query))
            self._answer(200, b"<p>ok</p>")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0"))).decode()
            token = parse_qs(body).get("logout_token", [""])[0]
            party.logout_tokens.append((urlsplit(self.path).path, token))
            self._answer(204, b"")

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield party
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Sso:
    run: Running
    rp: RelyingParty
    secret: str  # app-a's

    @property
    def auth_url(self) -> str:
        return f"{self.run.base_url}/realms/lgsp/protocol/openid-connect/auth"

    def kc(self, client_id: str) -> KeycloakOpenID:
        return KeycloakOpenID(
            server_url=self.run.base_url,
            realm_name="lgsp",
            client_id=client_id,
            client_secret_key=self.secret if client_id == "app-a" else None,
        )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sso(tmp_path_factory: pytest.TempPathFactory, rp: RelyingParty) -> AsyncIterator[Sso]:
    """Identity (SQLite) with two applications: app-a (confidential, back-channel logout) and
    app-b (public, PKCE), both calling back to the relying-party server."""
    tmp: Path = tmp_path_factory.mktemp("sso")
    runtime, ident, base = await start_identity(tmp)
    run = Running(runtime, ident, base, runtime.server.address, tmp)
    await asyncio.to_thread(
        ident.agencies.create,
        SYSTEM,
        pb.Agency(code=JUSTICE, name="Sở Tư pháp", level=pb.AGENCY_LEVEL_DEPARTMENT),
    )
    _, secret, internal = await asyncio.to_thread(
        ident.clients.create,
        SYSTEM,
        pb.ClientSystem(client_id="app-a", display_name="Ứng dụng A", owner_agency_code=JUSTICE),
        redirect_uris=[f"{rp.base}/a/callback", f"{rp.base}/a/bye"],
    )
    await asyncio.to_thread(
        ident.clients.configure,
        SYSTEM,
        "lgsp",
        internal,
        backchannel_logout_uri=f"{rp.base}/a/backchannel",
    )
    await asyncio.to_thread(
        ident.clients.create,
        SYSTEM,
        pb.ClientSystem(client_id="app-b", display_name="Ứng dụng B"),
        secret=None,
        redirect_uris=[f"{rp.base}/b/callback"],
        service_accounts=False,
        direct_grants=False,
    )
    try:
        yield Sso(run, rp, secret)
    finally:
        await runtime.stop(grace=1)


def official(s: Sso, totp: bool = False) -> tuple[str, str, str]:
    """(user id, username, TOTP secret or "")."""
    import uuid

    username = f"cv{uuid.uuid4().hex[:8]}.stp"
    user, _ = s.run.identity.users.create(
        SYSTEM,
        pb.User(username=username, display_name="Trần Thị Bích", agency_code=JUSTICE),
        password=PASSWORD,
    )
    s.run.identity.roles.grant(SYSTEM, user.id, "specialist", JUSTICE)
    secret = s.run.identity.users.set_totp(SYSTEM, user.id, True) if totp else ""
    return user.id, username, secret


def params(s: Sso, client: str, **extra: str) -> dict[str, str]:
    out = {
        "client_id": client,
        "redirect_uri": f"{s.rp.base}/{client[-1]}/callback",
        "response_type": "code",
        "scope": "openid",
        "state": f"st-{client}",
    }
    if client == "app-b":
        verifier, challenge = pkce()
        out |= {"code_challenge": challenge, "code_challenge_method": "S256", "_v": verifier}
    return out | extra


async def authorize(browser: httpx.AsyncClient, s: Sso, p: dict[str, str]) -> httpx.Response:
    """The browser goes to the authorization endpoint and follows redirects: it ends on the
    application's callback (a code or an error) or on the login page."""
    query = {k: v for k, v in p.items() if not k.startswith("_")}
    return await browser.get(s.auth_url, params=query)


async def sign_in(
    browser: httpx.AsyncClient, s: Sso, page: httpx.Response, username: str, totp: str = ""
) -> httpx.Response:
    import re

    assert page.status_code == 200 and 'name="password"' in page.text, page.text[:300]
    hidden = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    hidden = {k: v.replace("&amp;", "&") for k, v in hidden.items()}
    return await browser.post(
        s.auth_url, data={**hidden, "username": username, "password": PASSWORD, "totp": totp}
    )


def landed(r: httpx.Response, s: Sso, client: str) -> dict[str, str]:
    """The callback's query where the browser ended up."""
    url = urlsplit(str(r.url))
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{s.rp.base}/{client[-1]}/callback", r.url
    return {k: v[0] for k, v in parse_qs(url.query).items()}


async def exchange(s: Sso, client: str, p: dict[str, str], code: str) -> dict[str, Any]:
    return await asyncio.to_thread(
        s.kc(client).token,
        grant_type="authorization_code",
        code=code,
        redirect_uri=p["redirect_uri"],
        code_verifier=p.get("_v"),
    )


def claims(s: Sso, token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, s.run.identity.keys.keyset()).claims)


async def both_signed_in(
    s: Sso, browser: httpx.AsyncClient, username: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    pa = params(s, "app-a")
    q = landed(await sign_in(browser, s, await authorize(browser, s, pa), username), s, "app-a")
    tok_a = await exchange(s, "app-a", pa, q["code"])
    pb_ = params(s, "app-b")
    r = await authorize(browser, s, pb_)
    assert not any(h.status_code == 200 for h in r.history)  # no page on the way
    tok_b = await exchange(s, "app-b", pb_, landed(r, s, "app-b")["code"])
    return tok_a, tok_b


async def test_a_signed_in_browser_gets_codes_for_every_client_without_the_form(
    sso: Sso,
) -> None:
    uid, username, _ = await asyncio.to_thread(official, sso)
    async with httpx.AsyncClient(follow_redirects=True) as browser:
        pa = params(sso, "app-a")
        page = await authorize(browser, sso, pa)
        q = landed(await sign_in(browser, sso, page, username), sso, "app-a")
        assert q["state"] == "st-app-a" and q["iss"] == f"{sso.run.base_url}/realms/lgsp"
        tok_a = await exchange(sso, "app-a", pa, q["code"])
        # The second application: straight back with a code, no login page on the way.
        pb_ = params(sso, "app-b")
        r = await authorize(browser, sso, pb_)
        qb = landed(r, sso, "app-b")
        assert [h.status_code for h in r.history] == [302]
        tok_b = await exchange(sso, "app-b", pb_, qb["code"])
        # prompt=none while signed in: a code, silently.
        pn = params(sso, "app-a", prompt="none")
        silent = landed(await authorize(browser, sso, pn), sso, "app-a")
        assert "code" in silent and "error" not in silent
    a, b = claims(sso, tok_a["id_token"]), claims(sso, tok_b["id_token"])
    assert a["sub"] == b["sub"] == uid and a["aud"] == "app-a" and b["aud"] == "app-b"
    assert a["sid"] != b["sid"]  # a client session each, within the one SSO session
    assert a["auth_time"] == b["auth_time"] and a["acr"] == b["acr"] == "1"
    assert a["amr"] == b["amr"] == ["pwd"]
    access_b = claims(sso, tok_b["access_token"])
    assert access_b["acr"] == "1" and access_b["sid"] == b["sid"]
    # The reuse is audited (who, which client, which SSO session), not a new LoginSucceeded.
    with sso.run.identity.storage.session() as db:
        actions = db.execute(
            sa.select(t.audit_log.c.action).where(t.audit_log.c.subject == uid)
        ).scalars()
        assert sorted(a for a in actions if a.startswith("login")) == [
            "login",
            "login.sso",
            "login.sso",
        ]


async def test_prompt_none_without_a_session_answers_login_required(sso: Sso) -> None:
    async with httpx.AsyncClient(follow_redirects=True) as browser:
        q = landed(await authorize(browser, sso, params(sso, "app-b", prompt="none")), sso, "b")
        assert q["error"] == "login_required" and q["state"] == "st-app-b"
        # A forged or stale cookie is no session either.
        browser.cookies.set("LGSP_SSO", "0" * 36 + ".forged", path="/realms/lgsp/")
        q = landed(await authorize(browser, sso, params(sso, "app-b", prompt="none")), sso, "b")
        assert q["error"] == "login_required"
        page = await authorize(browser, sso, params(sso, "app-b"))
        assert 'name="password"' in page.text


async def test_prompt_login_max_age_and_login_hint(sso: Sso) -> None:
    _, username, _ = await asyncio.to_thread(official, sso)
    async with httpx.AsyncClient(follow_redirects=True) as browser:
        hinted = await authorize(browser, sso, params(sso, "app-a", login_hint=username))
        assert f'value="{username}"' in hinted.text  # the form comes filled in
        landed(await sign_in(browser, sso, hinted, username), sso, "app-a")
        first = browser.cookies["LGSP_SSO"]
        for extra in ({"prompt": "login"}, {"max_age": "0"}):
            page = await authorize(browser, sso, params(sso, "app-b", **extra))
            assert page.status_code == 200 and 'name="password"' in page.text, extra
        # Within max_age: no form.
        landed(await authorize(browser, sso, params(sso, "app-b", max_age="3600")), sso, "b")
        # Signing in again (prompt=login) keeps the SSO session and moves its auth_time.
        with sso.run.identity.storage.session() as db:
            db.execute(
                sa.update(t.sso_sessions)
                .where(t.sso_sessions.c.id == first.split(".")[0])
                .values(auth_time=time.time() - 600)
            )
            db.commit()
        page = await authorize(browser, sso, params(sso, "app-b", max_age="300"))
        assert 'name="password"' in page.text  # signed in 600 s ago: too old for max_age
        pb_ = params(sso, "app-b", prompt="login")
        again = landed(
            await sign_in(browser, sso, await authorize(browser, sso, pb_), username), sso, "b"
        )
        assert browser.cookies.get("LGSP_SSO") == first
        tok = await exchange(sso, "app-b", pb_, again["code"])
        assert time.time() - claims(sso, tok["id_token"])["auth_time"] < 60
        # Bad values: the client hears invalid_request; nothing is shown.
        for bad in ({"prompt": "none login"}, {"prompt": "evil"}, {"max_age": "-1"}):
            q = landed(await authorize(browser, sso, params(sso, "app-b", **bad)), sso, "b")
            assert q["error"] == "invalid_request", bad


async def test_acr_and_amr_reflect_the_second_factor(sso: Sso) -> None:
    _, username, secret = await asyncio.to_thread(official, sso, True)
    async with httpx.AsyncClient(follow_redirects=True) as browser:
        pa = params(sso, "app-a")
        page = await authorize(browser, sso, pa)
        q = landed(await sign_in(browser, sso, page, username, pyotp.TOTP(secret).now()), sso, "a")
        tok = await exchange(sso, "app-a", pa, q["code"])
        pb_ = params(sso, "app-b")
        tok_b = await exchange(
            sso, "app-b", pb_, landed(await authorize(browser, sso, pb_), sso, "b")["code"]
        )
    for t_ in (tok, tok_b):
        ident = claims(sso, t_["id_token"])
        assert ident["acr"] == "2" and ident["amr"] == ["pwd", "otp", "mfa"]
    # The refreshed tokens keep saying how the session began.
    fresh = await asyncio.to_thread(sso.kc("app-b").refresh_token, tok_b["refresh_token"])
    assert claims(sso, fresh["id_token"])["acr"] == "2"


async def test_logout_by_an_application_ends_every_client_session(sso: Sso) -> None:
    uid, username, _ = await asyncio.to_thread(official, sso)
    conf = sso.kc("app-a")
    async with httpx.AsyncClient(follow_redirects=True) as browser:
        tok_a, tok_b = await both_signed_in(sso, browser, username)
        sid_a = claims(sso, tok_a["access_token"])["sid"]
        sid_b = claims(sso, tok_b["access_token"])["sid"]
        before = len(sso.rp.logout_tokens)
        # app-b (public) logs out with its ID token and comes back to app-a's page.
        r = await browser.get(
            f"{sso.run.base_url}/realms/lgsp/protocol/openid-connect/logout",
            params={
                "id_token_hint": tok_b["id_token"],
                "post_logout_redirect_uri": f"{sso.rp.base}/a/bye",
                "client_id": "app-a",
                "state": "after",
            },
        )
        assert str(r.url).startswith(f"{sso.rp.base}/a/bye") and "state=after" in str(r.url)
        assert browser.cookies.get("LGSP_SSO") is None
        # Both clients' tokens are refused: introspection, refresh, userinfo.
        for tok in (tok_a, tok_b):
            assert await asyncio.to_thread(conf.introspect, tok["access_token"]) == {
                "active": False
            }
        with pytest.raises(KeycloakPostError):
            await asyncio.to_thread(sso.kc("app-b").refresh_token, tok_b["refresh_token"])
        with pytest.raises(KeycloakPostError):
            await asyncio.to_thread(conf.refresh_token, tok_a["refresh_token"])
        # The browser must sign in again.
        page = await authorize(browser, sso, params(sso, "app-a"))
        assert 'name="password"' in page.text
    # app-a registered for back-channel logout: a signed logout token naming its session.
    path, token = sso.rp.logout_tokens[before]
    assert path == "/a/backchannel" and len(sso.rp.logout_tokens) == before + 1
    decoded = jwt.decode(token, sso.run.identity.keys.keyset())
    lt = decoded.claims
    assert decoded.header["typ"] == "logout+jwt"
    assert lt["sid"] == sid_a and lt["sub"] == uid and lt["aud"] == "app-a"
    assert lt["events"] == {BACKCHANNEL_EVENT: {}} and "nonce" not in lt
    assert lt["iss"] == f"{sso.run.base_url}/realms/lgsp"
    # Every service refuses them: SessionEnded for each client session on the sessions topic.
    with sso.run.identity.storage.session() as db:
        ended = db.execute(
            sa.select(sa.func.count())
            .select_from(outbox_table)
            .where(
                outbox_table.c.event_type == "lgsp.api.identity.v1.SessionEnded",
                outbox_table.c.topic == "lgsp.identity.sessions.v1",
                outbox_table.c.key == uid,
            )
        ).scalar_one()
        revoked = db.execute(
            sa.select(t.sessions.c.id).where(
                t.sessions.c.user_id == uid, t.sessions.c.revoked_at.is_not(None)
            )
        ).scalars()
        assert set(revoked) == {sid_a, sid_b}
    assert ended == 2


async def test_logout_with_a_refresh_token_ends_the_sso_session(sso: Sso) -> None:
    """Keycloak's adapter logout (python-keycloak's logout): the whole SSO session ends."""
    _, username, _ = await asyncio.to_thread(official, sso)
    async with httpx.AsyncClient(follow_redirects=True) as browser:
        tok_a, tok_b = await both_signed_in(sso, browser, username)
        await asyncio.to_thread(sso.kc("app-a").logout, tok_a["refresh_token"])
        q = landed(await authorize(browser, sso, params(sso, "app-b", prompt="none")), sso, "b")
        assert q["error"] == "login_required"
    with pytest.raises(KeycloakPostError):
        await asyncio.to_thread(sso.kc("app-b").refresh_token, tok_b["refresh_token"])


async def test_logout_without_a_hint_asks_first(sso: Sso) -> None:
    _, username, _ = await asyncio.to_thread(official, sso)
    logout = f"{sso.run.base_url}/realms/lgsp/protocol/openid-connect/logout"
    async with httpx.AsyncClient(follow_redirects=True) as browser:
        tok_a, _ = await both_signed_in(sso, browser, username)
        page = await browser.get(logout)
        assert page.status_code == 200 and 'name="confirm"' in page.text
        # Nothing ended yet: a link on another site cannot sign the official out.
        landed(await authorize(browser, sso, params(sso, "app-b")), sso, "b")
        # Another site's POST carries no cookie (SameSite=Lax): nothing ends either.
        async with httpx.AsyncClient() as other_site:
            r = await other_site.post(logout, data={"confirm": "1"})
            assert r.status_code == 200
        landed(await authorize(browser, sso, params(sso, "app-b")), sso, "b")
        await browser.post(logout, data={"confirm": "1"})
        page = await authorize(browser, sso, params(sso, "app-b"))
        assert 'name="password"' in page.text
    introspected = await asyncio.to_thread(sso.kc("app-a").introspect, tok_a["access_token"])
    assert introspected == {"active": False}


async def test_a_bad_id_token_hint_or_redirect_ends_nothing_and_never_redirects(sso: Sso) -> None:
    _, username, _ = await asyncio.to_thread(official, sso)
    logout = f"{sso.run.base_url}/realms/lgsp/protocol/openid-connect/logout"
    async with httpx.AsyncClient() as browser:
        browser.follow_redirects = True
        tok_a, _ = await both_signed_in(sso, browser, username)
        browser.follow_redirects = False
        forged = tok_a["id_token"][:-4] + "AAAA"
        r = await browser.get(logout, params={"id_token_hint": forged})
        assert r.status_code == 400 and "location" not in r.headers
        access = tok_a["access_token"]  # not an ID token
        r = await browser.get(logout, params={"id_token_hint": access})
        assert r.status_code == 400
        r = await browser.get(
            logout,
            params={
                "id_token_hint": tok_a["id_token"],
                "post_logout_redirect_uri": "https://evil.example/",
            },
        )
        assert r.status_code == 400 and "location" not in r.headers


async def test_an_idle_or_expired_sso_session_signs_in_again(sso: Sso) -> None:
    _, username, _ = await asyncio.to_thread(official, sso)
    async with httpx.AsyncClient(follow_redirects=True) as browser:
        _, tok_b = await both_signed_in(sso, browser, username)
        sso_id = browser.cookies["LGSP_SSO"].split(".")[0]
        # Unused for longer than identity.sso_session_idle_seconds (1800 s by default).
        with sso.run.identity.storage.session() as db:
            db.execute(
                sa.update(t.sso_sessions)
                .where(t.sso_sessions.c.id == sso_id)
                .values(last_seen_at=time.time() - 1801)
            )
            db.commit()
        q = landed(await authorize(browser, sso, params(sso, "app-b", prompt="none")), sso, "b")
        assert q["error"] == "login_required"
        with pytest.raises(KeycloakPostError):  # its clients' sessions idled out with it
            await asyncio.to_thread(sso.kc("app-b").refresh_token, tok_b["refresh_token"])


async def test_lifetimes_come_from_settings(tmp_path: Path) -> None:
    runtime, ident, _ = await start_identity(
        tmp_path, sso_session_idle_seconds="120", sso_session_max_seconds="600"
    )
    try:
        assert ident.sso.lifetimes.idle == 120 and ident.sso.lifetimes.max == 600
        assert ident.grants.sso == ident.sso.lifetimes
    finally:
        await runtime.stop(grace=1)


async def test_discovery_is_valid_openid_provider_metadata(tmp_path: Path) -> None:
    """authlib's OpenID Connect Discovery 1.0 validator accepts the document (as served
    behind the province's HTTPS proxy), SSO and logout fields included."""
    from authlib.oidc.discovery import OpenIDProviderMetadata

    runtime, _, base = await start_identity(tmp_path, issuer_base_url="https://sso.hatinh.gov.vn")
    try:
        async with httpx.AsyncClient() as http:
            wk = (await http.get(f"{base}/realms/lgsp/.well-known/openid-configuration")).json()
    finally:
        await runtime.stop(grace=1)
    OpenIDProviderMetadata(wk).validate()
    assert wk["issuer"] == "https://sso.hatinh.gov.vn/realms/lgsp"
    assert wk["backchannel_logout_supported"] and wk["backchannel_logout_session_supported"]
    assert wk["end_session_endpoint"].endswith("/protocol/openid-connect/logout")
    assert set(wk["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    }


async def test_an_unsupported_grant_is_named_in_full(sso: Sso) -> None:
    grant = "urn:ietf:params:oauth:grant-type:token-exchange"
    async with httpx.AsyncClient() as http:
        r = await http.post(
            f"{sso.run.base_url}/realms/lgsp/protocol/openid-connect/token",
            data={"grant_type": grant, "client_id": "app-a", "client_secret": sso.secret},
        )
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"
    assert grant in r.json()["error_description"]


async def test_an_admin_signing_an_official_out_ends_the_sso_session_too(sso: Sso) -> None:
    from keycloak import KeycloakAdmin

    from tests.services.identity.conftest import ADMIN_PASSWORD

    uid, username, _ = await asyncio.to_thread(official, sso)
    kc = KeycloakAdmin(
        server_url=sso.run.base_url,
        username="admin",
        password=ADMIN_PASSWORD,
        realm_name="lgsp",
        user_realm_name="master",
        client_id="admin-cli",
    )
    async with httpx.AsyncClient(follow_redirects=True) as browser:
        tok_a, _ = await both_signed_in(sso, browser, username)
        before = len(sso.rp.logout_tokens)
        await asyncio.to_thread(kc.user_logout, uid)
        q = landed(await authorize(browser, sso, params(sso, "app-b", prompt="none")), sso, "b")
        assert q["error"] == "login_required"
    assert len(sso.rp.logout_tokens) == before + 1
    _, token = sso.rp.logout_tokens[before]
    lt = jwt.decode(token, sso.run.identity.keys.keyset()).claims
    assert lt["sid"] == claims(sso, tok_a["access_token"])["sid"] and lt["sub"] == uid


async def _logout_token_for(sso: Sso, before: int, sid: str) -> dict[str, Any]:
    """The logout token app-a's back channel got for `sid` (sent in the background)."""
    for _ in range(100):
        for _, token in sso.rp.logout_tokens[before:]:
            lt = dict(jwt.decode(token, sso.run.identity.keys.keyset()).claims)
            if lt["sid"] == sid:
                return lt
        await asyncio.sleep(0.05)
    raise AssertionError(f"no logout token for {sid}")


@pytest.mark.parametrize("change", ["disable", "delete", "reset", "lock"])
async def test_an_account_disabled_deleted_reset_or_locked_logs_out_through_the_back_channel(
    sso: Sso, change: str
) -> None:
    from keycloak import KeycloakAdmin

    from tests.services.identity.conftest import ADMIN_PASSWORD

    uid, username, _ = await asyncio.to_thread(official, sso)
    kc = KeycloakAdmin(
        server_url=sso.run.base_url,
        username="admin",
        password=ADMIN_PASSWORD,
        realm_name="lgsp",
        user_realm_name="master",
        client_id="admin-cli",
    )
    async with httpx.AsyncClient(follow_redirects=True) as browser:
        tok_a, _ = await both_signed_in(sso, browser, username)
        # A second session of the same account, by the password grant: every one is told.
        direct = await asyncio.to_thread(sso.kc("app-a").token, username, PASSWORD)
        before = len(sso.rp.logout_tokens)
        if change == "disable":
            await asyncio.to_thread(kc.update_user, uid, {"enabled": False})
        elif change == "delete":
            await asyncio.to_thread(kc.delete_user, uid)
        elif change == "reset":
            await asyncio.to_thread(kc.set_user_password, uid, "Mat-Khau-Moi-2026!", False)
        else:
            for _ in range(5):
                with pytest.raises(KeycloakAuthenticationError):
                    await asyncio.to_thread(sso.kc("app-a").token, username, "Sai-Mat-Khau-1!")
        for tok in (tok_a, direct):
            sid = claims(sso, tok["access_token"])["sid"]
            lt = await _logout_token_for(sso, before, sid)
            assert lt["sub"] == uid and lt["aud"] == "app-a" and BACKCHANNEL_EVENT in lt["events"]
        q = landed(await authorize(browser, sso, params(sso, "app-b", prompt="none")), sso, "b")
        assert q["error"] == "login_required"
    # app-b registered no back channel: nothing was sent for its session.
    sids = {
        jwt.decode(tk, sso.run.identity.keys.keyset()).claims["sid"]
        for _, tk in sso.rp.logout_tokens[before:]
    }
    assert sids == {claims(sso, t["access_token"])["sid"] for t in (tok_a, direct)}
