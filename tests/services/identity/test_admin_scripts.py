"""Issue 19 item 3: the admin REST calls Keycloak administrators script, each driven by
python-keycloak's own KeycloakAdmin method against the running identity service."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import pytest_asyncio
from keycloak import KeycloakAdmin, KeycloakOpenID, urls_patterns
from keycloak.exceptions import (
    KeycloakAuthenticationError,
    KeycloakDeleteError,
    KeycloakGetError,
    KeycloakPostError,
    KeycloakPutError,
    raise_error_from_response,
)

from lgsp.api.identity.v1 import identity_pb2 as pb
from services.identity.domain.access import SYSTEM
from tests.services.identity.conftest import ADMIN_PASSWORD, Running, start_identity

pytestmark = pytest.mark.asyncio(loop_scope="module")

JUSTICE = "000.00.12.H27"
FINANCE = "000.00.13.H27"
PASSWORD = "Chuyen-Vien-2025!"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def run(
    tmp_path_factory: pytest.TempPathFactory, module_db_url: str
) -> AsyncIterator[tuple[Running, str]]:
    """Identity (SQLite, then PostgreSQL) with two agencies and a confidential client."""
    tmp = tmp_path_factory.mktemp("admin-scripts")
    runtime, ident, base = await start_identity(tmp, module_db_url)
    for code, name in ((JUSTICE, "Sở Tư pháp"), (FINANCE, "Sở Tài chính")):
        await asyncio.to_thread(
            ident.agencies.create,
            SYSTEM,
            pb.Agency(code=code, name=name, level=pb.AGENCY_LEVEL_DEPARTMENT),
        )
    _, secret, _ = await asyncio.to_thread(
        ident.clients.create,
        SYSTEM,
        pb.ClientSystem(client_id="qlvb", display_name="QLVB", owner_agency_code=JUSTICE),
        roles=["clerk"],
    )
    try:
        yield Running(runtime, ident, base, runtime.server.address, tmp), secret
    finally:
        await runtime.stop(grace=1)


def kc_admin(run: Running) -> KeycloakAdmin:
    return KeycloakAdmin(
        server_url=run.base_url,
        username="admin",
        password=ADMIN_PASSWORD,
        realm_name="lgsp",
        user_realm_name="master",
        client_id="admin-cli",
    )


def new_user(kc: KeycloakAdmin, agency: str = JUSTICE, **extra: Any) -> tuple[str, str]:
    name = f"cv{uuid.uuid4().hex[:8]}.stp"
    uid = kc.create_user(
        {
            "username": name,
            "firstName": "Bích",
            "lastName": "Trần Thị",
            "enabled": True,
            "attributes": {"agency_code": [agency]},
            "credentials": [{"type": "password", "value": PASSWORD, "temporary": False}],
            **extra,
        }
    )
    return uid, name


def oidc(run: Running, secret: str) -> KeycloakOpenID:
    return KeycloakOpenID(
        server_url=run.base_url, realm_name="lgsp", client_id="qlvb", client_secret_key=secret
    )


async def test_update_realm_role_and_role_members(run: tuple[Running, str]) -> None:
    r, _ = run
    kc = kc_admin(r)

    def flow() -> None:
        name = f"r{uuid.uuid4().hex[:6]}"
        kc.create_realm_role({"name": name, "description": "Vai trò thử"})
        kc.update_realm_role(name, {"name": f"{name}-2", "description": "Vai trò đã đổi"})
        assert kc.get_realm_role(f"{name}-2")["description"] == "Vai trò đã đổi"
        with pytest.raises(KeycloakGetError):
            kc.get_realm_role(name)
        with pytest.raises(KeycloakPutError) as builtin:
            kc.update_realm_role("leader", {"name": "sep"})
        assert builtin.value.response_code == 400
        with pytest.raises(KeycloakPutError) as missing:
            kc.update_realm_role("khong-co", {"description": "x"})
        assert missing.value.response_code == 404
        uid, _ = new_user(kc)
        kc.assign_realm_roles(uid, [kc.get_realm_role(f"{name}-2")])
        members = kc.get_realm_role_members(f"{name}-2")
        assert [m["id"] for m in members] == [uid]

    await asyncio.to_thread(flow)


async def test_update_client_and_password_grant_rules(run: tuple[Running, str]) -> None:
    r, _ = run
    kc = kc_admin(r)

    def flow() -> None:
        cid = f"web{uuid.uuid4().hex[:6]}"
        kc.create_client(
            {"clientId": cid, "publicClient": True, "redirectUris": ["https://a.example/cb"]}
        )
        internal = kc.get_client_id(cid)
        assert internal is not None
        assert kc.get_client(internal)["directAccessGrantsEnabled"] is False  # public
        kc.update_client(
            internal,
            {
                "name": "Cổng web",
                "redirectUris": ["https://b.example/cb"],
                "attributes": {"backchannel.logout.url": "https://b.example/logout"},
            },
        )
        rep = kc.get_client(internal)
        assert rep["redirectUris"] == ["https://b.example/cb"] and rep["name"] == "Cổng web"
        assert rep["attributes"]["backchannel.logout.url"] == "https://b.example/logout"
        for bad in (
            {"directAccessGrantsEnabled": True},  # a public client takes no passwords
            {"redirectUris": ["https://b.example/*"]},
            {"attributes": {"backchannel.logout.url": "javascript:alert(1)"}},
        ):
            with pytest.raises(KeycloakPutError) as err:
                kc.update_client(internal, bad)
            assert err.value.response_code == 400, bad
        assert kc.get_client(internal)["redirectUris"] == ["https://b.example/cb"]

    await asyncio.to_thread(flow)


async def test_users_count_filters_and_the_agency_attribute(run: tuple[Running, str]) -> None:
    r, secret = run
    kc = kc_admin(r)

    def flow() -> None:
        uid, name = new_user(kc, FINANCE)
        assert kc.users_count({"username": name}) == 1
        assert kc.users_count({"search": name[:6]}) == 1
        assert kc.users_count({"q": f"agency_code:{FINANCE}"}) == 1
        assert kc.users_count({"q": f"agency_code:{FINANCE}", "enabled": "false"}) == 0
        assert kc.users_count() >= 2
        with pytest.raises(KeycloakGetError) as bad:
            kc.users_count({"enabled": "perhaps"})
        assert bad.value.response_code == 400
        # The agency is a user attribute settable over REST, and what tokens say.
        kc.update_user(uid, {"attributes": {"agency_code": [JUSTICE]}})
        assert kc.get_user(uid)["attributes"]["agency_code"] == [JUSTICE]
        assert kc.users_count({"q": f"agency_code:{FINANCE}"}) == 0
        tok = oidc(r, secret).token(name, PASSWORD)
        claims = oidc(r, secret).decode_token(tok["access_token"])
        assert claims["agency_code"] == JUSTICE

    await asyncio.to_thread(flow)


async def test_required_actions_are_stored_and_enforced(run: tuple[Running, str]) -> None:
    r, secret = run
    kc = kc_admin(r)

    def flow() -> None:
        uid, name = new_user(kc, requiredActions=["VERIFY_PROFILE"])
        assert kc.get_user(uid)["requiredActions"] == ["VERIFY_PROFILE"]
        with pytest.raises(KeycloakPostError) as refused:
            oidc(r, secret).token(name, PASSWORD)
        assert b"not fully set up" in refused.value.response_body
        kc.update_user(uid, {"requiredActions": ["UPDATE_PASSWORD", "CONFIGURE_TOTP"]})
        assert kc.get_user(uid)["requiredActions"] == ["UPDATE_PASSWORD", "CONFIGURE_TOTP"]
        with pytest.raises(KeycloakPutError) as bad:
            kc.update_user(uid, {"requiredActions": ["DELETE_EVERYTHING"]})
        assert bad.value.response_code == 400
        with pytest.raises(KeycloakPostError):
            oidc(r, secret).token(name, PASSWORD)
        kc.update_user(uid, {"requiredActions": []})
        assert oidc(r, secret).token(name, PASSWORD)["access_token"]

    await asyncio.to_thread(flow)


async def test_verify_profile_on_the_login_page(run: tuple[Running, str]) -> None:
    """VERIFY_PROFILE at sign-in, after UPDATE_PASSWORD (Keycloak's order): the page shows
    the stored name and email; a bad field is named and keeps what was typed; a forged
    pending token is refused; confirming stores the profile, clears the action and signs in."""
    import re

    r, _ = run
    kc = kc_admin(r)
    uid, name = await asyncio.to_thread(
        new_user,
        kc,
        JUSTICE,
        email="bich.tt@hatinh.gov.vn",
        requiredActions=["UPDATE_PASSWORD", "VERIFY_PROFILE"],
    )
    other, _ = await asyncio.to_thread(new_user, kc, JUSTICE, requiredActions=["VERIFY_PROFILE"])
    cid = f"p{uid[:6]}"
    await asyncio.to_thread(
        kc.create_client,
        {"clientId": cid, "publicClient": True, "redirectUris": ["https://c.example/cb"]},
    )
    from tests.services.identity.test_oidc import login_form, pkce

    auth = f"{r.base_url}/realms/lgsp/protocol/openid-connect/auth"
    verifier, challenge = pkce()
    params = {
        "client_id": cid,
        "redirect_uri": "https://c.example/cb",
        "response_type": "code",
        "scope": "openid",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }

    def fields(page: httpx.Response) -> dict[str, str]:
        found = re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page.text)
        return {k: v.replace("&amp;", "&") for k, v in found}

    def shown(page: httpx.Response, field: str) -> str:
        found = re.search(rf'name="{field}" value="([^"]*)"', page.text)
        assert found is not None, field
        return found.group(1)

    new = "Mat-Khau-Moi-2026!"
    async with httpx.AsyncClient() as browser:
        token = await login_form(browser, auth, params)
        page = await browser.post(
            auth, data={**params, "form_token": token, "username": name, "password": PASSWORD}
        )
        assert page.status_code == 200 and "Đổi mật khẩu" in page.text
        page = await browser.post(
            auth, data={**fields(page), "new_password": new, "confirm_password": new}
        )
        assert page.status_code == 200 and "Xác nhận thông tin cá nhân" in page.text
        assert "Họ và tên đệm" in page.text and "Thư điện tử" in page.text
        assert shown(page, "lastName") == "Trần Thị" and shown(page, "firstName") == "Bích"
        assert shown(page, "email") == "bich.tt@hatinh.gov.vn"
        form = fields(page)
        typed = {"lastName": "Trần Thị", "firstName": "Ngọc Bích", "email": "khong-phai-thu"}
        bad = await browser.post(auth, data={**form, **typed})
        assert bad.status_code == 400 and "Địa chỉ thư điện tử không hợp lệ." in bad.text
        assert shown(bad, "firstName") == "Ngọc Bích" and 'aria-invalid="true"' in bad.text
        nameless = await browser.post(auth, data={**form, **typed, "firstName": " "})
        assert nameless.status_code == 400 and "Vui lòng nhập tên" in nameless.text
        # Another account's id in the pending token: refused, nothing stored for it.
        issued, _, mac = form["pending_profile"].split(".")
        forged = {**form, "pending_profile": f"{issued}.{other}.{mac}"}
        refused = await browser.post(auth, data={**forged, **typed, "email": "x@hatinh.gov.vn"})
        assert refused.status_code == 403
        done = await browser.post(
            auth, data={**fields(bad), **typed, "email": "Bich.NTT@HaTinh.gov.vn"}
        )
        assert done.status_code == 302, done.text[:300]
        code = parse_qs(urlsplit(done.headers["location"]).query)["code"][0]
    public = KeycloakOpenID(server_url=r.base_url, realm_name="lgsp", client_id=cid)
    tok = await asyncio.to_thread(
        public.token,
        grant_type="authorization_code",
        code=code,
        redirect_uri=params["redirect_uri"],
        code_verifier=verifier,
    )
    ident = await asyncio.to_thread(public.decode_token, tok["id_token"], validate=False)
    assert ident["sub"] == uid and ident["email"] == "bich.ntt@hatinh.gov.vn"
    assert ident["name"] == "Trần Thị Ngọc Bích"
    rep = await asyncio.to_thread(kc.get_user, uid)
    assert rep["requiredActions"] == [] and rep["firstName"] == "Ngọc Bích"
    assert (await asyncio.to_thread(kc.get_user, other))["requiredActions"] == ["VERIFY_PROFILE"]


async def test_credentials(run: tuple[Running, str]) -> None:
    r, _ = run
    kc = kc_admin(r)

    def flow() -> None:
        uid, _ = new_user(kc)
        assert [c["type"] for c in kc.get_credentials(uid)] == ["password"]
        r.identity.users.set_totp(SYSTEM, uid, True)
        creds = {c["type"]: c["id"] for c in kc.get_credentials(uid)}
        assert set(creds) == {"password", "otp"}
        with pytest.raises(KeycloakDeleteError) as pw:
            kc.delete_credential(uid, creds["password"])
        assert pw.value.response_code == 400
        kc.delete_credential(uid, creds["otp"])
        assert [c["type"] for c in kc.get_credentials(uid)] == ["password"]
        assert kc.get_user(uid)["totp"] is False

    await asyncio.to_thread(flow)


async def test_sessions_per_user_and_client_and_logout(run: tuple[Running, str]) -> None:
    r, secret = run
    kc = kc_admin(r)

    def flow() -> None:
        uid, name = new_user(kc)
        tok = oidc(r, secret).token(name, PASSWORD)
        sessions = kc.get_sessions(uid)
        assert [s["id"] for s in sessions] == [tok["session_state"]]
        assert list(sessions[0]["clients"].values()) == ["qlvb"] and sessions[0]["username"] == name
        qlvb = kc.get_client_id("qlvb")
        assert qlvb is not None
        assert tok["session_state"] in {s["id"] for s in kc.get_client_all_sessions(qlvb)}
        kc.user_logout(uid)
        assert kc.get_sessions(uid) == []
        assert oidc(r, secret).introspect(tok["access_token"]) == {"active": False}
        with pytest.raises(KeycloakGetError) as missing:
            kc.get_sessions(str(uuid.uuid4()))
        assert missing.value.response_code == 404

    await asyncio.to_thread(flow)


async def test_events_and_admin_events_from_the_audit_log(run: tuple[Running, str]) -> None:
    r, secret = run
    kc = kc_admin(r)

    def flow() -> None:
        uid, name = new_user(kc)
        oidc(r, secret).token(name, PASSWORD)
        with pytest.raises(KeycloakAuthenticationError):
            oidc(r, secret).token(name, "Sai-Mat-Khau-1")
        events = kc.get_events({"user": uid})
        types = [e["type"] for e in events]
        assert types == ["LOGIN_ERROR", "LOGIN"]  # newest first
        assert events[1]["clientId"] == "qlvb" and events[1]["userId"] == uid
        assert [e["type"] for e in kc.get_events({"user": uid, "type": "LOGIN"})] == ["LOGIN"]
        admin_events = kc.get_admin_events({"resourceTypes": "USER", "operationTypes": "CREATE"})
        assert any(e["resourcePath"] == f"users/{uid}" for e in admin_events)
        with pytest.raises(KeycloakGetError) as bad:
            kc.get_events({"dateFrom": "hôm qua"})
        assert bad.value.response_code == 400

    await asyncio.to_thread(flow)


async def test_realm_server_info_and_client_scopes(run: tuple[Running, str]) -> None:
    r, _ = run
    kc = kc_admin(r)

    def flow() -> None:
        realm = kc.get_realm("lgsp")
        assert realm["accessTokenLifespan"] == 300 and realm["ssoSessionIdleTimeout"] == 1800
        assert realm["bruteForceProtected"] and realm["failureFactor"] == 5
        assert realm["passwordPolicy"].startswith("length(10)")
        with pytest.raises(KeycloakGetError):
            kc.get_realm("khong-co")
        assert kc.get_server_info()["systemInfo"]["version"]
        scopes = {s["name"]: s for s in kc.get_client_scopes()}
        assert {"profile", "email", "roles", "acr"} <= set(scopes)
        assert kc.get_client_scope(scopes["roles"]["id"])["name"] == "roles"
        claims = {
            m["config"]["claim.name"]
            for m in kc.get_mappers_from_client_scope(scopes["profile"]["id"])
        }
        assert "agency_code" in claims

    await asyncio.to_thread(flow)


SETTABLE = (
    "accessTokenLifespan",
    "ssoSessionIdleTimeout",
    "ssoSessionMaxLifespan",
    "bruteForceProtected",
    "failureFactor",
    "waitIncrementSeconds",
    "maxFailureWaitSeconds",
    "passwordPolicy",
)


async def test_update_realm_settings_apply_at_once(run: tuple[Running, str]) -> None:
    """update_realm: token lifetime, brute-force detection, password policy and SSO
    lifetimes are stored, in force from the next request, validated field by field, and
    audited as an admin event; only a platform administrator may change them."""
    r, secret = run
    kc = kc_admin(r)

    def put_refused(payload: dict[str, Any]) -> str:
        with pytest.raises(KeycloakPutError) as refused:
            kc.update_realm("lgsp", payload)
        assert refused.value.response_code == 400, payload
        return str(json.loads(refused.value.response_body)["field"])

    def flow() -> None:
        before = kc.get_realm("lgsp")
        original = {k: before[k] for k in SETTABLE}
        try:
            # A script's GET → change → PUT round trip.
            kc.update_realm(
                "lgsp",
                {
                    **before,
                    "accessTokenLifespan": 120,
                    "ssoSessionIdleTimeout": 600,
                    "failureFactor": 2,
                    "passwordPolicy": "length(14) and notUsername(undefined)",
                },
            )
            after = kc.get_realm("lgsp")
            assert after["accessTokenLifespan"] == 120 and after["failureFactor"] == 2
            assert after["ssoSessionIdleTimeout"] == 600
            assert after["passwordPolicy"].startswith("length(14) and maxLength(128)")
            assert r.identity.sso.lifetimes_of("lgsp").idle == 600
            # The token lifetime, at once.
            uid, name = new_user(kc)
            claims = oidc(r, secret).decode_token(
                oidc(r, secret).token(name, PASSWORD)["access_token"]
            )
            assert claims["exp"] - claims["iat"] == 120
            # The password policy: 13 characters are now too short, 14 are enough.
            with pytest.raises(KeycloakPutError) as short:
                kc.set_user_password(uid, "Mat-Khau-Ngan", temporary=False)
            assert short.value.response_code == 400
            kc.set_user_password(uid, "Mat-Khau-Du-Dai", temporary=False)
            # Brute-force detection: the second wrong password locks the account.
            for _ in range(2):
                with pytest.raises(KeycloakAuthenticationError):
                    oidc(r, secret).token(name, "Sai-Mat-Khau-1!")
            with pytest.raises(KeycloakAuthenticationError):
                oidc(r, secret).token(name, "Mat-Khau-Du-Dai")
            # Turned off: wrong passwords lock nobody.
            kc.update_realm("lgsp", {"bruteForceProtected": False})
            _, other_name = new_user(kc)
            for _ in range(4):
                with pytest.raises(KeycloakAuthenticationError):
                    oidc(r, secret).token(other_name, "Sai-Mat-Khau-1!")
            assert oidc(r, secret).token(other_name, PASSWORD)["access_token"]
            # Validation: each bad value named, nothing stored.
            assert put_refused({"accessTokenLifespan": 5}) == "accessTokenLifespan"
            assert put_refused({"accessTokenLifespan": "300"}) == "accessTokenLifespan"
            assert put_refused({"ssoSessionIdleTimeout": 7200, "ssoSessionMaxLifespan": 3600}) in {
                "ssoSessionIdleTimeout",
                "ssoSessionMaxLifespan",
            }
            assert put_refused({"failureFactor": 0}) == "failureFactor"
            assert put_refused({"bruteForceProtected": "yes"}) == "bruteForceProtected"
            assert put_refused({"passwordPolicy": "regexPattern(.*)"}) == "passwordPolicy"
            assert put_refused({"passwordPolicy": "length(4)"}) == "passwordPolicy"
            assert put_refused({"passwordPolicy": "hashAlgorithm(md5)"}) == "passwordPolicy"
            assert put_refused({"waitIncrementSeconds": 60, "maxFailureWaitSeconds": 120}) == (
                "maxFailureWaitSeconds"
            )
            assert put_refused({"displayName": "Tỉnh khác"}) == "displayName"
            assert put_refused({"smtpServer": {"host": "x"}}) == "smtpServer"
            assert put_refused({"permanentLockout": True}) == "permanentLockout"
            assert kc.get_realm("lgsp")["accessTokenLifespan"] == 120
            # Audited as an admin event naming what changed.
            events = kc.get_admin_events({"resourceTypes": "REALM", "operationTypes": "UPDATE"})
            assert any(
                "bruteForceProtected" in e["details"].get("fields", "")
                and e["resourcePath"] == "realms/lgsp"
                for e in events
            )
            # An agency administrator of the realm may not change them.
            admin_id, admin_name = new_user(kc)
            kc.assign_realm_roles(admin_id, [kc.get_realm_role("agency_admin")])
            tok = oidc(r, secret).token(admin_name, PASSWORD)["access_token"]
            resp = httpx.put(
                f"{r.base_url}/admin/realms/lgsp",
                json={"accessTokenLifespan": 3600},
                headers={"Authorization": f"Bearer {tok}"},
            )
            assert resp.status_code == 403, resp.text
            with pytest.raises(KeycloakPutError) as unknown:
                kc.update_realm("khong-co", {"accessTokenLifespan": 300})
            assert unknown.value.response_code in (403, 404)
        finally:
            kc.update_realm("lgsp", original)
        assert {k: kc.get_realm("lgsp")[k] for k in SETTABLE} == original

    await asyncio.to_thread(flow)


async def test_officials_tokens_administer_none_of_it(run: tuple[Running, str]) -> None:
    r, secret = run
    kc = kc_admin(r)
    uid, name = await asyncio.to_thread(new_user, kc)
    tok = await asyncio.to_thread(oidc(r, secret).token, name, PASSWORD)
    headers = {"Authorization": f"Bearer {tok['access_token']}"}
    base = f"{r.base_url}/admin/realms/lgsp"
    async with httpx.AsyncClient() as http:
        for method, path in (
            ("GET", ""),
            ("GET", "/events"),
            ("GET", "/admin-events"),
            ("GET", f"/users/{uid}/sessions"),
            ("GET", f"/users/{uid}/credentials"),
            ("PUT", "/roles/leader"),
            ("GET", "/client-scopes"),
        ):
            resp = await http.request(method, f"{base}{path}", headers=headers, json={})
            assert resp.status_code == 403, (method, path, resp.text)
        resp = await http.get(f"{r.base_url}/admin/serverinfo", headers=headers)
        assert resp.status_code == 403
        resp = await http.get(f"{r.base_url}/admin/serverinfo")
        assert resp.status_code == 401


async def test_client_roles_assigned_to_users_and_groups_reach_tokens(
    run: tuple[Running, str],
) -> None:
    r, secret = run
    kc = kc_admin(r)

    def flow() -> None:
        qlvb = kc.get_client_id("qlvb")
        assert qlvb is not None
        role = f"van-thu-{uuid.uuid4().hex[:4]}"
        assert kc.create_client_role(qlvb, {"name": role, "description": "Văn thư QLVB"}) == role
        kc.create_client_role(qlvb, {"name": f"{role}-ky"})
        with pytest.raises(KeycloakPostError) as dup:
            kc.create_client_role(qlvb, {"name": role})
        assert dup.value.response_code == 409
        names = {x["name"] for x in kc.get_client_roles(qlvb)}
        assert {role, f"{role}-ky"} <= names
        rep = kc.get_client_role(qlvb, role)
        assert rep["clientRole"] is True and rep["containerId"] == qlvb
        # To a user directly, and to a group (every member holds it).
        uid, name = new_user(kc)
        kc.assign_client_role(uid, qlvb, [rep])
        assert [x["name"] for x in kc.get_client_roles_of_user(uid, qlvb)] == [role]
        assert [m["id"] for m in kc.get_client_role_members(qlvb, role)] == [uid]
        gid = kc.create_group({"name": f"nhom-{uuid.uuid4().hex[:4]}"})
        assert gid is not None
        kc.group_user_add(uid, gid)
        kc.assign_group_client_roles(gid, qlvb, [kc.get_client_role(qlvb, f"{role}-ky")])
        assert [x["name"] for x in kc.get_group_client_roles(gid, qlvb)] == [f"{role}-ky"]
        tok = oidc(r, secret).token(name, PASSWORD)
        claims = oidc(r, secret).decode_token(tok["access_token"])
        assert claims["resource_access"] == {"qlvb": {"roles": [role, f"{role}-ky"]}}
        # Taken away: the next token no longer says it; unknown roles change nothing.
        kc.delete_client_roles_of_user(uid, qlvb, [rep])
        with pytest.raises(KeycloakPostError) as unknown:
            kc.assign_client_role(uid, qlvb, [{"name": "khong-co"}])
        assert unknown.value.response_code == 404
        tok = oidc(r, secret).token(name, PASSWORD)
        claims = oidc(r, secret).decode_token(tok["access_token"])
        assert claims["resource_access"] == {"qlvb": {"roles": [f"{role}-ky"]}}
        kc.delete_client_role(qlvb, f"{role}-ky")
        tok = oidc(r, secret).token(name, PASSWORD)
        assert "resource_access" not in oidc(r, secret).decode_token(tok["access_token"])

    await asyncio.to_thread(flow)


async def test_composite_client_roles_reach_tokens_and_refuse_cycles(
    run: tuple[Running, str],
) -> None:
    r, secret = run
    kc = kc_admin(r)

    def flow() -> None:
        qlvb = kc.get_client_id("qlvb")
        tag = uuid.uuid4().hex[:4]
        other_id = f"hs{tag}"
        kc.create_client({"clientId": other_id, "name": "Hồ sơ"})
        other = kc.get_client_id(other_id)
        assert qlvb and other
        lead, read, sign, view = f"lanh-dao-{tag}", f"doc-{tag}", f"ky-{tag}", f"xem-{tag}"
        for client, role in ((qlvb, lead), (qlvb, read), (qlvb, sign), (other, view)):
            kc.create_client_role(client, {"name": role})
        # lead ⊃ {read, sign}; sign ⊃ view (another client's role, by its id).
        kc.add_composite_client_roles_to_role(
            qlvb, lead, [kc.get_client_role(qlvb, read), {"name": sign}]
        )
        kc.add_composite_client_roles_to_role(qlvb, sign, [kc.get_client_role(other, view)])
        got = kc.get_composite_client_roles_of_role(qlvb, lead)
        assert sorted(x["name"] for x in got) == [read, sign]
        assert {x["containerId"] for x in got} == {qlvb}
        assert [x["containerId"] for x in kc.get_composite_client_roles_of_role(qlvb, sign)] == [
            other
        ]
        uid, name = new_user(kc)
        kc.assign_client_role(uid, qlvb, [kc.get_client_role(qlvb, lead)])
        claims = oidc(r, secret).decode_token(oidc(r, secret).token(name, PASSWORD)["access_token"])
        assert claims["resource_access"] == {
            "qlvb": {"roles": sorted([lead, read, sign])},
            other_id: {"roles": [view]},
        }
        # Cycles (directly, and through another client's role) change nothing.
        for parent_client, parent, child in (
            (qlvb, lead, lead),
            (qlvb, read, lead),
            (other, view, lead),
        ):
            with pytest.raises(KeycloakPostError) as cycle:
                kc.add_composite_client_roles_to_role(
                    parent_client, parent, [kc.get_client_role(qlvb, child)]
                )
            assert cycle.value.response_code == 400
            assert b'"field":"composites"' in cycle.value.response_body
        assert kc.get_composite_client_roles_of_role(qlvb, read) == []
        # Bad children: unknown, a realm role, not a list of roles.
        for bad, code in (
            ([{"name": "khong-co"}], 404),
            ([{"id": str(uuid.uuid4())}], 404),
            ([{"name": "leader", "clientRole": False}], 400),
        ):
            with pytest.raises(KeycloakPostError) as refused:
                kc.add_composite_client_roles_to_role(qlvb, read, bad)
            assert refused.value.response_code == code
        url = urls_patterns.URL_ADMIN_CLIENT_ROLES_COMPOSITE_CLIENT_ROLE.format(
            **{"realm-name": "lgsp", "id": qlvb, "role-name": read}
        )
        for body in ("[]", '"x"', json.dumps([{"name": "x"}] * 101)):
            assert kc.connection.raw_post(url, data=body).status_code == 400
        # Taken out: the token no longer carries the child (nor what it contained).
        kc.remove_composite_client_roles_from_role(qlvb, lead, [{"name": sign}])
        claims = oidc(r, secret).decode_token(oidc(r, secret).token(name, PASSWORD)["access_token"])
        assert claims["resource_access"] == {"qlvb": {"roles": sorted([lead, read])}}
        # Deleting a child role drops its composite edges.
        kc.delete_client_role(qlvb, read)
        assert kc.get_composite_client_roles_of_role(qlvb, lead) == []

    await asyncio.to_thread(flow)


async def test_private_key_jwt_client_authentication(run: tuple[Running, str]) -> None:
    """A client registers its public key (update_client, Keycloak's jwks.string) and from
    then on proves itself with signed assertions (RFC 7523), never with the secret."""
    import json
    import time

    from joserfc import jwt
    from joserfc.jwk import RSAKey

    r, _ = run
    kc = kc_admin(r)
    cid = f"pk{uuid.uuid4().hex[:6]}"
    _, secret, internal = await asyncio.to_thread(
        r.identity.clients.create,
        SYSTEM,
        pb.ClientSystem(client_id=cid, display_name="Ký số", owner_agency_code=JUSTICE),
        roles=["clerk"],
    )
    key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"})
    public = json.dumps({"keys": [key.as_dict(private=False)]})
    with pytest.raises(KeycloakPutError) as private:
        await asyncio.to_thread(
            kc.update_client,
            internal,
            {"attributes": {"jwks.string": json.dumps({"keys": [key.as_dict(private=True)]})}},
        )
    assert private.value.response_code == 400
    await asyncio.to_thread(kc.update_client, internal, {"attributes": {"jwks.string": public}})
    rep = await asyncio.to_thread(kc.get_client, internal)
    assert rep["clientAuthenticatorType"] == "client-jwt"
    issuer = f"{r.base_url}/realms/lgsp"
    token_url = f"{issuer}/protocol/openid-connect/token"

    def assertion(**over: Any) -> str:
        now = int(time.time())
        claims = {"iss": cid, "sub": cid, "aud": token_url, "exp": now + 60, "iat": now}
        claims |= {"jti": uuid.uuid4().hex, **over}
        return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)

    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    }
    async with httpx.AsyncClient() as http:
        good = assertion()
        ok = await http.post(token_url, data={**form, "client_assertion": good})
        assert ok.status_code == 200, ok.text
        claims = jwt.decode(ok.json()["access_token"], r.identity.keys.keyset()).claims
        assert claims["azp"] == cid
        ok2 = await http.post(token_url, data={**form, "client_assertion": assertion(aud=issuer)})
        assert ok2.status_code == 200
        other = RSAKey.generate_key(2048, parameters={"kid": "k1"})
        forged = jwt.encode(
            {"alg": "RS256", "kid": "k1"},
            {"iss": cid, "sub": cid, "aud": token_url, "exp": int(time.time()) + 60, "jti": "x"},
            other,
        )
        for bad in (
            good,  # replayed
            assertion(aud="https://elsewhere.example/token"),
            assertion(exp=int(time.time()) - 120),
            assertion(exp=int(time.time()) + 86400),  # too long a replay window
            assertion(iss="documents"),
            forged,
            "not.a.jwt",
        ):
            r_ = await http.post(token_url, data={**form, "client_assertion": bad})
            assert r_.status_code == 401, bad
        # The secret no longer authenticates it.
        by_secret = await http.post(
            token_url, data={"grant_type": "client_credentials"}, auth=(cid, secret)
        )
        assert by_secret.status_code == 401
        wrong_type = await http.post(
            token_url,
            data={**form, "client_assertion_type": "saml", "client_assertion": assertion()},
        )
        assert wrong_type.status_code == 401
        wk = (await http.get(f"{issuer}/.well-known/openid-configuration")).json()
    assert "private_key_jwt" in wk["token_endpoint_auth_methods_supported"]


async def test_group_tree_and_group_realm_roles_reach_tokens(run: tuple[Running, str]) -> None:
    r, secret = run
    kc = kc_admin(r)

    def flow() -> None:
        top = f"phong-{uuid.uuid4().hex[:4]}"
        gid = kc.create_group({"name": top, "attributes": {"agency_code": [JUSTICE]}})
        assert gid is not None
        child = kc.create_group({"name": "to-ho-tich"}, parent=gid)
        assert child is not None
        grandchild = kc.create_group({"name": "nhom-1"}, parent=child)
        rep = kc.get_group(gid)
        assert rep["subGroupCount"] == 1 and rep["subGroups"][0]["id"] == child
        assert [c["id"] for c in kc.get_group_children(gid)] == [child]
        by_path = kc.get_group_by_path(f"/{top}/to-ho-tich/nhom-1")
        assert by_path["id"] == grandchild and by_path["parentId"] == child
        assert by_path["path"] == f"/{top}/to-ho-tich/nhom-1"
        with pytest.raises(KeycloakGetError) as missing:
            kc.get_group_by_path(f"/{top}/khong-co")
        assert missing.value.response_code == 404
        with pytest.raises(KeycloakDeleteError) as parent:
            kc.delete_group(gid)  # subgroups first
        assert parent.value.response_code == 400
        # Realm roles of a group: every member holds them in the group's agency.
        uid, name = new_user(kc, FINANCE)
        kc.group_user_add(uid, child)
        kc.assign_group_realm_roles(child, [kc.get_realm_role("leader")])
        assert [x["name"] for x in kc.get_group_realm_roles(child)] == ["leader"]
        claims = oidc(r, secret).decode_token(oidc(r, secret).token(name, PASSWORD)["access_token"])
        assert "leader" in claims["realm_access"]["roles"]
        assert claims["agency_roles"][JUSTICE] == ["leader"]
        with pytest.raises(KeycloakPostError) as unknown:
            kc.assign_group_realm_roles(child, [{"name": "khong-co"}])
        assert unknown.value.response_code == 404
        kc.delete_group_realm_roles(child, [{"name": "leader"}])
        claims = oidc(r, secret).decode_token(oidc(r, secret).token(name, PASSWORD)["access_token"])
        assert "leader" not in claims["realm_access"]["roles"]

    await asyncio.to_thread(flow)


def move_group(kc: KeycloakAdmin, group_id: str, parent: str | None) -> None:
    """Keycloak moves a group by POSTing it to its new parent's children (or to groups, for
    the top): 204. python-keycloak's create_group expects the 201 of a new group, so the
    move goes through its connection and response check directly."""
    url = (
        urls_patterns.URL_ADMIN_GROUP_CHILD.format(**{"realm-name": "lgsp", "id": parent})
        if parent
        else urls_patterns.URL_ADMIN_GROUPS.format(**{"realm-name": "lgsp"})
    )
    raw = kc.connection.raw_post(url, data=json.dumps({"id": group_id, "name": "ignored"}))
    raise_error_from_response(raw, KeycloakPostError, expected_codes=[204])


async def test_a_group_moves_under_another_parent_and_never_into_its_own_subtree(
    run: tuple[Running, str],
) -> None:
    r, _ = run
    kc = kc_admin(r)

    def flow() -> None:
        tag = uuid.uuid4().hex[:4]
        a = kc.create_group({"name": f"a-{tag}", "attributes": {"agency_code": [JUSTICE]}})
        b = kc.create_group({"name": f"b-{tag}", "attributes": {"agency_code": [JUSTICE]}})
        assert a and b
        child = kc.create_group({"name": f"con-{tag}"}, parent=a)
        grandchild = kc.create_group({"name": f"chau-{tag}"}, parent=child)
        assert child and grandchild
        move_group(kc, child, b)  # with its own subgroup
        assert kc.get_group(child)["parentId"] == b
        assert [c["id"] for c in kc.get_group_children(b)] == [child]
        assert kc.get_group_children(a) == []
        assert kc.get_group_by_path(f"/b-{tag}/con-{tag}/chau-{tag}")["id"] == grandchild
        # Cycles: under itself, under its own child.
        for parent in (child, grandchild):
            with pytest.raises(KeycloakPostError) as cycle:
                move_group(kc, child, parent)
            assert cycle.value.response_code == 400 and b'"field":"id"' in cycle.value.response_body
        assert kc.get_group(child)["parentId"] == b
        # Another agency's group, an unknown group, a malformed id.
        other = kc.create_group({"name": f"tc-{tag}", "attributes": {"agency_code": [FINANCE]}})
        assert other
        with pytest.raises(KeycloakPostError) as agency:
            move_group(kc, child, other)
        assert agency.value.response_code == 400
        with pytest.raises(KeycloakPostError) as unknown:
            move_group(kc, str(uuid.uuid4()), b)
        assert unknown.value.response_code == 404
        raw = kc.connection.raw_post(
            urls_patterns.URL_ADMIN_GROUP_CHILD.format(**{"realm-name": "lgsp", "id": b}),
            data=json.dumps({"id": ["x"] * 1000}),
        )
        assert raw.status_code == 400 and raw.json()["field"] == "id"
        # Too deep: six levels under b (depth 7) cannot take child's two levels.
        parent = b
        for i in range(6):
            parent = kc.create_group({"name": f"d{i}-{tag}"}, parent=parent) or ""
        with pytest.raises(KeycloakPostError) as deep:
            move_group(kc, child, parent)
        assert deep.value.response_code == 400
        # Back to the top.
        move_group(kc, child, None)
        top = kc.get_group(child)
        assert top["parentId"] is None and top["path"] == f"/con-{tag}"
        assert kc.get_group_by_path(f"/con-{tag}/chau-{tag}")["id"] == grandchild

    await asyncio.to_thread(flow)


async def test_composite_realm_roles_reach_tokens(run: tuple[Running, str]) -> None:
    r, secret = run
    kc = kc_admin(r)

    def flow() -> None:
        lead = f"truong-{uuid.uuid4().hex[:4]}"
        kc.create_realm_role({"name": lead})
        kc.add_composite_realm_roles_to_role(
            lead, [kc.get_realm_role("leader"), kc.get_realm_role("clerk")]
        )
        assert {x["name"] for x in kc.get_composite_realm_roles_of_role(lead)} == {
            "leader",
            "clerk",
        }
        # A cycle is refused and changes nothing.
        outer = f"{lead}-tren"
        kc.create_realm_role({"name": outer})
        kc.add_composite_realm_roles_to_role(outer, [kc.get_realm_role(lead)])
        with pytest.raises(KeycloakPostError) as cycle:
            kc.add_composite_realm_roles_to_role(lead, [kc.get_realm_role(outer)])
        assert cycle.value.response_code == 400
        uid, name = new_user(kc)
        kc.assign_realm_roles(uid, [kc.get_realm_role(outer)])
        claims = oidc(r, secret).decode_token(oidc(r, secret).token(name, PASSWORD)["access_token"])
        assert {outer, lead, "leader", "clerk"} <= set(claims["realm_access"]["roles"])
        assert {"leader", "clerk"} <= set(claims["agency_roles"][JUSTICE])
        kc.remove_composite_realm_roles_to_role(lead, [{"name": "leader"}])
        claims = oidc(r, secret).decode_token(oidc(r, secret).token(name, PASSWORD)["access_token"])
        assert "leader" not in claims["realm_access"]["roles"]
        assert "clerk" in claims["realm_access"]["roles"]

    await asyncio.to_thread(flow)


async def test_a_temporary_password_is_changed_on_the_login_page(run: tuple[Running, str]) -> None:
    """UPDATE_PASSWORD at sign-in: the temporary password leads to the change form; the new
    password (policy checked, typed twice) signs in and the old one no longer does."""
    import re

    r, secret = run
    kc = kc_admin(r)
    temporary = "Tam-Thoi-2025-xyz"
    uid, name = await asyncio.to_thread(
        new_user,
        kc,
        JUSTICE,
        credentials=[{"type": "password", "value": temporary, "temporary": True}],
    )
    assert (await asyncio.to_thread(kc.get_user, uid))["requiredActions"] == ["UPDATE_PASSWORD"]
    cid = f"w{uid[:6]}"
    await asyncio.to_thread(
        kc.create_client,
        {"clientId": cid, "publicClient": True, "redirectUris": ["https://d.example/cb"]},
    )
    from tests.services.identity.test_oidc import login_form, pkce

    auth = f"{r.base_url}/realms/lgsp/protocol/openid-connect/auth"
    verifier, challenge = pkce()
    params = {
        "client_id": cid,
        "redirect_uri": "https://d.example/cb",
        "response_type": "code",
        "scope": "openid",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }

    def fields(page: httpx.Response) -> dict[str, str]:
        return dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page.text))

    new = "Mat-Khau-Moi-2025!"
    async with httpx.AsyncClient() as browser:
        token = await login_form(browser, auth, params)
        page = await browser.post(
            auth, data={**params, "form_token": token, "username": name, "password": temporary}
        )
        assert page.status_code == 200 and 'name="new_password"' in page.text
        form = fields(page)
        # A forged pending token (another account) is refused before anything changes.
        forged = {**form, "pending": form["pending"].replace(uid, str(uuid.uuid4()))}
        r1 = await browser.post(auth, data={**forged, "new_password": new, "confirm_password": new})
        assert r1.status_code == 403
        mismatch = await browser.post(
            auth, data={**form, "new_password": new, "confirm_password": new + "x"}
        )
        assert mismatch.status_code == 400 and "không khớp" in mismatch.text
        weak = await browser.post(
            auth, data={**fields(mismatch), "new_password": "abc", "confirm_password": "abc"}
        )
        assert weak.status_code == 400 and "ít nhất 3 trong 4" in weak.text
        done = await browser.post(
            auth, data={**fields(weak), "new_password": new, "confirm_password": new}
        )
        assert done.status_code == 302, done.text[:300]
        code = parse_qs(urlsplit(done.headers["location"]).query)["code"][0]
    public = KeycloakOpenID(server_url=r.base_url, realm_name="lgsp", client_id=cid)
    tok = await asyncio.to_thread(
        public.token,
        grant_type="authorization_code",
        code=code,
        redirect_uri=params["redirect_uri"],
        code_verifier=verifier,
    )
    assert tok["access_token"]
    assert (await asyncio.to_thread(kc.get_user, uid))["requiredActions"] == []
    assert await asyncio.to_thread(oidc(r, secret).token, name, new)
    with pytest.raises(KeycloakAuthenticationError):
        await asyncio.to_thread(oidc(r, secret).token, name, temporary)


async def test_configure_totp_on_the_login_page(run: tuple[Running, str]) -> None:
    """CONFIGURE_TOTP at sign-in: the page shows a new secret; a code from it turns the second
    factor on and signs in with acr 2; a wrong code or a swapped secret does not."""
    import re

    import pyotp

    r, secret = run
    kc = kc_admin(r)
    uid, name = await asyncio.to_thread(new_user, kc, JUSTICE, requiredActions=["CONFIGURE_TOTP"])
    cid = f"t{uid[:6]}"
    await asyncio.to_thread(
        kc.create_client,
        {"clientId": cid, "publicClient": True, "redirectUris": ["https://e.example/cb"]},
    )
    from tests.services.identity.test_oidc import login_form, pkce

    auth = f"{r.base_url}/realms/lgsp/protocol/openid-connect/auth"
    verifier, challenge = pkce()
    params = {
        "client_id": cid,
        "redirect_uri": "https://e.example/cb",
        "response_type": "code",
        "scope": "openid",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }

    def fields(page: httpx.Response) -> dict[str, str]:
        return dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page.text))

    async with httpx.AsyncClient() as browser:
        token = await login_form(browser, auth, params)
        page = await browser.post(
            auth, data={**params, "form_token": token, "username": name, "password": PASSWORD}
        )
        assert page.status_code == 200 and "xác thực hai lớp" in page.text
        form = fields(page)
        totp = pyotp.TOTP(form["totp_secret"])
        # The attacker's own secret in place of the one shown: refused.
        swapped = {**form, "totp_secret": pyotp.random_base32(), "totp": totp.now()}
        assert (await browser.post(auth, data=swapped)).status_code == 403
        wrong = await browser.post(auth, data={**form, "totp": "000000"})
        assert wrong.status_code == 400 and fields(wrong)["totp_secret"] == form["totp_secret"]
        done = await browser.post(auth, data={**fields(wrong), "totp": totp.now()})
        assert done.status_code == 302, done.text[:300]
        code = parse_qs(urlsplit(done.headers["location"]).query)["code"][0]
    public = KeycloakOpenID(server_url=r.base_url, realm_name="lgsp", client_id=cid)
    tok = await asyncio.to_thread(
        public.token,
        grant_type="authorization_code",
        code=code,
        redirect_uri=params["redirect_uri"],
        code_verifier=verifier,
    )
    ident = await asyncio.to_thread(public.decode_token, tok["id_token"], validate=False)
    assert ident["acr"] == "2"
    rep = await asyncio.to_thread(kc.get_user, uid)
    assert rep["requiredActions"] == [] and rep["totp"] is True
    # From now on the password alone is not enough.
    with pytest.raises(KeycloakAuthenticationError):
        await asyncio.to_thread(oidc(r, secret).token, name, PASSWORD)
    assert await asyncio.to_thread(oidc(r, secret).token, name, PASSWORD, totp=totp.now())
