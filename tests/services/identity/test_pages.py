"""Issue 13 items 5 and 6: identity's HTML pages cannot be framed and carry the usual
hardening headers; redirect URIs are compared exactly, and a near miss gets an error page
before any login form, never a redirect."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from starlette.routing import Route

from lgsp.api.identity.v1 import identity_pb2 as pb
from services.identity.adapters import tables as t
from services.identity.domain.access import SYSTEM
from services.identity.domain.errors import Invalid
from tests.services.identity.conftest import Running, start_identity

CALLBACK = "http://127.0.0.1:8100/callback"


@pytest.fixture
async def run(tmp_path: Path) -> AsyncIterator[Running]:
    runtime, ident, base = await start_identity(tmp_path)
    ident.clients.create(
        SYSTEM,
        pb.ClientSystem(client_id="lgsp-web", display_name="Web"),
        secret=None,
        service_accounts=False,
        redirect_uris=[CALLBACK, "https://motcua.hatinh.gov.vn/oidc/cb?tenant=thanhsen"],
    )
    # A client registered before exact matching (or imported) with a Keycloak-style wildcard,
    # as the demo's lgsp-web was: the "*" is now just a character, never a prefix.
    ident.clients.create(
        SYSTEM,
        pb.ClientSystem(client_id="legacy-web", display_name="Web"),
        secret=None,
        service_accounts=False,
        redirect_uris=[CALLBACK],
    )
    with ident.storage.engine.begin() as conn:
        conn.execute(
            sa.update(t.clients)
            .where(t.clients.c.client_id == "legacy-web")
            .values(redirect_uris=["http://127.0.0.1:8100/*"])
        )
    try:
        yield Running(runtime, ident, base, runtime.server.address, tmp_path)
    finally:
        await runtime.stop(grace=1)


def auth_params(redirect_uri: str = CALLBACK, client_id: str = "lgsp-web") -> dict[str, str]:
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return {
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": "openid",
        "state": "s1",
        "code_challenge": challenge.decode().rstrip("="),
        "code_challenge_method": "S256",
    }


def hardened(r: httpx.Response) -> None:
    what = f"{r.request.method} {r.request.url} → {r.status_code}"
    csp = r.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp, what
    assert "default-src 'none'" in csp and "form-action 'self'" in csp, what
    assert "script-src" not in csp and "unsafe-inline" not in csp, what
    assert r.headers.get("x-frame-options") == "DENY", what
    assert r.headers.get("x-content-type-options") == "nosniff", what
    assert r.headers.get("referrer-policy") == "no-referrer", what
    assert r.headers.get("cache-control") == "no-store", what


async def test_every_html_page_is_hardened(run: Running) -> None:
    auth = f"{run.base_url}/realms/lgsp/protocol/openid-connect/auth"
    logout = f"{run.base_url}/realms/lgsp/protocol/openid-connect/logout"
    html: list[httpx.Response] = []
    async with httpx.AsyncClient() as http:
        form = await http.get(auth, params=auth_params())
        token = re.search(r'name="form_token" value="([^"]+)"', form.text)
        assert form.status_code == 200 and token is not None
        csp = form.headers["content-security-policy"]
        # The sign-in posts here, then redirects to the registered client's origin only.
        assert "form-action 'self' http://127.0.0.1:8100;" in csp
        pages = [
            form,
            # a wrong password: the form again, with its error
            await http.post(
                auth,
                data={
                    **auth_params(),
                    "form_token": token.group(1),
                    "username": "x",
                    "password": "y",
                },
            ),
            await http.post(
                auth, data={**auth_params(), "username": "x", "password": "y"}
            ),  # forged
            await http.get(auth, params={**auth_params(), "client_id": "khong-co"}),  # error page
            await http.get(auth, params=auth_params("https://evil.example/cb")),  # error page
            await http.get(logout),  # signed out
            await http.get(logout, params={"id_token_hint": "x.y.z"}),  # bad hint
        ]
        for r in pages:
            assert r.headers["content-type"].startswith("text/html"), r.status_code
            hardened(r)
        html.extend(pages)
        # And whatever else answers HTML: every route, every method, with dummy parameters.
        for route in run.identity.app.build().routes:
            assert isinstance(route, Route)
            path = re.sub(r"\{realm\}", "lgsp", route.path)
            path = re.sub(r"\{[a-z_]+\}", "x", path)
            for method in sorted(route.methods or ()):
                if method == "HEAD":
                    continue
                r = await http.request(method, f"{run.base_url}{path}")
                if r.headers.get("content-type", "").startswith("text/html"):
                    hardened(r)
                    html.append(r)
                else:
                    assert r.headers.get("x-frame-options") is None or r.status_code
    assert len(html) >= len(pages) + 2  # the auth and logout routes answered HTML in the sweep


@pytest.mark.parametrize(
    "redirect",
    [
        "http://127.0.0.1:8100/callback#frag",
        "http://127.0.0.1:8100/callback#",
        "http://127.0.0.1:8100/callback/%2e%2e/%2e%2e/evil",
        "http://127.0.0.1:8100/%2e%2e/callback",
        "http://127.0.0.1:8100/callback/../callback",
        "http://127.0.0.1:8100//evil.example/",
        "http://127.0.0.1:8100/callback//evil.example/",
        "http://127.0.0.1:8100/Callback",
        "http://127.0.0.1:8100/CALLBACK",
        "http://127.0.0.1:8100/callback?next=https://evil.example/",
        "http://127.0.0.1:8100/callback/",
        "http://127.0.0.1:8100/callback/more",
        "http://127.0.0.1:8100/callbackx",
        "http://127.0.0.1:8100/callback%23frag",
        "http://127.0.0.1:8100",
        "http://localhost:8100/callback",
        "http://127.0.0.1:8101/callback",
        "https://127.0.0.1:8100/callback",
        "http://127.0.0.1:8100@evil.example/callback",
        "https://motcua.hatinh.gov.vn/oidc/cb",
        "https://motcua.hatinh.gov.vn/oidc/cb?tenant=thanhsen&x=1",
        "https://motcua.hatinh.gov.vn/oidc/cb?tenant=tranphu",
    ],
)
@pytest.mark.parametrize("client", ["lgsp-web", "legacy-web"])
async def test_a_near_miss_redirect_uri_gets_an_error_page_not_the_form(
    run: Running, redirect: str, client: str
) -> None:
    auth = f"{run.base_url}/realms/lgsp/protocol/openid-connect/auth"
    params = auth_params(redirect, client)
    async with httpx.AsyncClient() as http:
        for r in (
            await http.get(auth, params=params),
            await http.post(auth, data={**params, "username": "x", "password": "y"}),
        ):
            assert r.status_code == 400 and "location" not in r.headers
            assert 'name="form_token"' not in r.text and 'name="password"' not in r.text
            assert "chuyển hướng không hợp lệ" in r.text


async def test_the_registered_uris_themselves_get_the_form(run: Running) -> None:
    auth = f"{run.base_url}/realms/lgsp/protocol/openid-connect/auth"
    async with httpx.AsyncClient() as http:
        for uri in (CALLBACK, "https://motcua.hatinh.gov.vn/oidc/cb?tenant=thanhsen"):
            r = await http.get(auth, params=auth_params(uri))
            assert r.status_code == 200 and 'name="form_token"' in r.text
        # A stored wildcard matches nothing but itself.
        r = await http.get(auth, params=auth_params(CALLBACK, "legacy-web"))
        assert r.status_code == 400 and "location" not in r.headers


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:8100/*",
        "https://motcua.hatinh.gov.vn/oidc/*",
        "https://motcua.hatinh.gov.vn/cb#x",
        "https:///cb",
        "javascript:alert(1)",
        "/relative/cb",
    ],
)
async def test_wildcards_and_fragments_cannot_be_registered(run: Running, uri: str) -> None:
    with pytest.raises(Invalid) as err:
        run.identity.clients.create(
            SYSTEM,
            pb.ClientSystem(client_id="other-web", display_name="Web"),
            secret=None,
            service_accounts=False,
            redirect_uris=[uri],
        )
    assert err.value.field == "redirectUris"
