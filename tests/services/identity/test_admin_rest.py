"""The admin REST subset, driven by the unmodified python-keycloak KeycloakAdmin with a
master-realm admin-cli token, as a Keycloak deployment would be."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from keycloak import KeycloakAdmin, KeycloakOpenID
from keycloak.exceptions import (
    KeycloakAuthenticationError,
    KeycloakGetError,
    KeycloakPostError,
    KeycloakPutError,
)

from tests.services.identity.conftest import ADMIN_PASSWORD, Running, demo_secret
from tests.services.identity.test_oidc import counts

pytestmark = pytest.mark.asyncio(loop_scope="module")


def admin(run: Running) -> KeycloakAdmin:
    return KeycloakAdmin(
        server_url=run.base_url,
        username="admin",
        password=ADMIN_PASSWORD,
        realm_name="lgsp",
        user_realm_name="master",
        client_id="admin-cli",
    )


async def test_users_passwords_roles_groups(demo: Running) -> None:
    kc = admin(demo)
    name = f"nv{uuid.uuid4().hex[:6]}.stp"

    def flow() -> None:
        uid = kc.create_user(
            {
                "username": name,
                "email": f"{name.split('.')[0]}@stp.hatinh.gov.vn",
                "firstName": "Bình",
                "lastName": "Nguyễn Văn",
                "enabled": True,
                "attributes": {"agency_code": ["000.00.12.H27"], "position": ["Chuyên viên"]},
                "credentials": [
                    {"type": "password", "value": "Mat-Khau-Rat-Manh-1", "temporary": False}
                ],
            }
        )
        assert kc.get_user_id(name) == uid
        rep = kc.get_user(uid)
        assert rep["firstName"] == "Bình" and rep["attributes"]["agency_code"] == ["000.00.12.H27"]
        kc.update_user(uid, {"firstName": "Bình An"})
        assert kc.get_user(uid)["firstName"] == "Bình An"
        with pytest.raises(KeycloakPostError) as dup:  # duplicate username
            kc.create_user({"username": name, "attributes": {"agency_code": ["000.00.12.H27"]}})
        assert dup.value.response_code == 409

        roles = {r["name"] for r in kc.get_realm_roles()}
        assert {"admin", "clerk", "specialist", "leader", "operator", "citizen"} <= roles
        kc.assign_realm_roles(uid, [kc.get_realm_role("specialist")])
        assert [r["name"] for r in kc.get_realm_roles_of_user(uid)] == ["specialist"]

        kc.set_user_password(uid, "Mat-Khau-Moi-Hon-2", temporary=False)
        oidc = KeycloakOpenID(
            server_url=demo.base_url,
            realm_name="lgsp",
            client_id="documents",
            client_secret_key=demo_secret(demo, "documents"),
        )
        claims = oidc.decode_token(oidc.token(name, "Mat-Khau-Moi-Hon-2")["access_token"])
        assert claims["realm_access"]["roles"] == ["specialist"]
        assert claims["agency_roles"] == {"000.00.12.H27": ["specialist"]}
        kc.delete_realm_roles_of_user(uid, [{"name": "specialist"}])
        assert kc.get_realm_roles_of_user(uid) == []

        gid = kc.create_group({"name": f"Tổ công tác {name}"})
        kc.group_user_add(uid, gid)
        assert [m["id"] for m in kc.get_group_members(gid)] == [uid]
        assert [g["id"] for g in kc.get_user_groups(uid)] == [gid]

        kc.create_realm_role({"name": "thu-ky", "description": "Thư ký"})
        assert kc.get_realm_role("thu-ky")["description"] == "Thư ký"

        kc.delete_user(uid)
        assert kc.get_user_id(name) is None

    await asyncio.to_thread(flow)


async def test_clients_and_client_credentials(demo: Running) -> None:
    kc = admin(demo)

    def flow() -> None:
        internal = kc.create_client(
            {
                "clientId": "vbdh-bo-tu-phap",
                "name": "Hệ thống văn bản Bộ Tư pháp",
                "secret": "mot-bi-mat-du-dai-123",
                "serviceAccountsEnabled": True,
                "attributes": {"agency_code": "000.00.12.H27"},
            }
        )
        assert kc.get_client_id("vbdh-bo-tu-phap") == internal
        assert kc.get_client(internal)["serviceAccountsEnabled"] is True
        oidc = KeycloakOpenID(
            server_url=demo.base_url,
            realm_name="lgsp",
            client_id="vbdh-bo-tu-phap",
            client_secret_key="mot-bi-mat-du-dai-123",
        )
        assert oidc.token(grant_type="client_credentials")["access_token"]
        new = kc.generate_client_secrets(internal)["value"]
        with pytest.raises(KeycloakAuthenticationError):
            oidc.token(grant_type="client_credentials")  # the old secret stopped working
        oidc.client_secret_key = new
        assert oidc.token(grant_type="client_credentials")["access_token"]
        kc.delete_client(internal)
        assert kc.get_client_id("vbdh-bo-tu-phap") is None

    await asyncio.to_thread(flow)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"username": "Ab cd", "attributes": {"agency_code": ["000.00.12.H27"]}}, "user.username"),
        ({"username": "okname", "attributes": {"agency_code": ["12-34"]}}, "user.agency_code"),
        ({"username": "okname", "attributes": {"agency_code": ["000.00.99.H27"]}}, None),
        (
            {
                "username": "okname",
                "attributes": {"agency_code": ["000.00.12.H27"], "display_name": ["Tên\u0000lạ"]},
            },
            "user.display_name",
        ),
        (
            {
                "username": "okname",
                "attributes": {"agency_code": ["000.00.12.H27"], "display_name": ["Đ" * 201]},
            },
            "user.display_name",
        ),
        (
            {
                "username": "x'); DROP TABLE users;--",
                "attributes": {"agency_code": ["000.00.12.H27"]},
            },
            "user.username",
        ),
        (
            {
                "username": "okname",
                "attributes": {"agency_code": ["000.00.12.H27"]},
                "credentials": [{"type": "password", "value": "short"}],
            },
            "initial_password",
        ),
    ],
)
async def test_bad_input_changes_nothing(demo: Running, payload: dict, field: str | None) -> None:  # type: ignore[type-arg]
    kc = admin(demo)
    before = counts(demo)
    with pytest.raises(KeycloakPostError) as err:
        await asyncio.to_thread(kc.create_user, payload)
    if field is None:
        assert err.value.response_code == 404  # unknown agency
    else:
        assert err.value.response_code == 400
        assert field.encode() in err.value.response_body
    assert counts(demo) == before


async def test_non_admin_token_is_refused(demo: Running) -> None:
    kc = KeycloakAdmin(
        server_url=demo.base_url,
        realm_name="lgsp",
        client_id="documents",
        client_secret_key=demo_secret(demo, "documents"),
    )
    with pytest.raises((KeycloakGetError, KeycloakAuthenticationError)) as err:
        await asyncio.to_thread(kc.get_users, {})
    assert err.value.response_code == 403
    with pytest.raises(KeycloakAuthenticationError):
        await asyncio.to_thread(
            KeycloakAdmin(
                server_url=demo.base_url,
                username="admin",
                password="wrong-Password-1",
                realm_name="lgsp",
                user_realm_name="master",
                client_id="admin-cli",
            ).get_users
        )


async def test_unknown_user_is_404(demo: Running) -> None:
    kc = admin(demo)
    with pytest.raises(KeycloakGetError) as err:
        await asyncio.to_thread(kc.get_user, str(uuid.uuid4()))
    assert err.value.response_code == 404
    with pytest.raises(KeycloakPutError) as err2:
        await asyncio.to_thread(
            kc.set_user_password, str(uuid.uuid4()), "Mat-Khau-Moi-Hon-2", False
        )
    assert err2.value.response_code == 404
