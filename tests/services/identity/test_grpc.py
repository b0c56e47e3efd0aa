"""IdentityService and AdminService over real gRPC, authenticated with this provider's own
access tokens (password grant for officials)."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
import pytest_asyncio
import sqlalchemy as sa
from google.protobuf.field_mask_pb2 import FieldMask
from grpc_status import rpc_status
from keycloak import KeycloakOpenID

from lgsp.api.identity.v1 import admin_pb2 as apb
from lgsp.api.identity.v1 import admin_pb2_grpc, identity_pb2_grpc
from lgsp.api.identity.v1 import identity_pb2 as pb
from lgsp.grpc.client import channel
from services.identity.adapters import tables as t
from tests.services.identity.conftest import (
    OFFICIAL_PASSWORD,
    Running,
    demo_password,
    demo_secret,
    new_official,
)
from tests.services.identity.test_oidc import counts

pytestmark = pytest.mark.asyncio(loop_scope="module")


def token_for(run: Running, username: str, password: str = "") -> str:
    password = password or demo_password(run, username)
    kc = KeycloakOpenID(
        server_url=run.base_url,
        realm_name="lgsp",
        client_id="documents",
        client_secret_key=demo_secret(run, "documents"),
    )
    return str(kc.token(username, password)["access_token"])


def province_admin(run: Running) -> str:
    with run.identity.storage.session() as s:
        return str(
            s.execute(
                sa.select(t.users.c.username)
                .join(t.role_grants, t.role_grants.c.user_id == t.users.c.id)
                .where(t.role_grants.c.role == "admin", t.users.c.realm == "lgsp")
            )
            .scalars()
            .first()
        )


def md(tok: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {tok}"),)


def field_of(err: grpc.aio.AioRpcError) -> str:
    from google.rpc import error_details_pb2

    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            return bad.field_violations[0].field
    return ""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def admin_token(demo: Running) -> str:
    # In a thread: the service answers on this very event loop.
    return await asyncio.to_thread(token_for, demo, province_admin(demo))


async def test_unauthenticated_and_non_admin(demo: Running) -> None:
    _, username = await asyncio.to_thread(new_official, demo)
    tok = await asyncio.to_thread(token_for, demo, username, OFFICIAL_PASSWORD)
    async with channel(demo.grpc_address) as ch:
        admin = admin_pb2_grpc.AdminServiceStub(ch)
        ident = identity_pb2_grpc.IdentityServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await ident.GetAgency(pb.GetAgencyRequest(code="000.00.00.H27"))
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await ident.GetAgency(pb.GetAgencyRequest(code="000.00.00.H27"), metadata=md("x.y.z"))
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await admin.CreateAgency(
                apb.CreateAgencyRequest(
                    agency=pb.Agency(
                        code="000.00.99.H27",
                        name="Sở Mới",
                        level=pb.AGENCY_LEVEL_DEPARTMENT,
                        parent_code="000.00.00.H27",
                    )
                ),
                metadata=md(tok),
            )
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
        who = await ident.WhoAmI(pb.WhoAmIRequest(), metadata=md(tok))
        assert who.user.username == username and who.user.agency_code == "000.00.12.H27"


@pytest.mark.parametrize(
    ("agency", "field"),
    [
        (
            pb.Agency(code="000.00.00.h30", name="x", level=3, parent_code="000.00.00.H27"),
            "agency.code",
        ),
        (pb.Agency(code="A" * 10 + ".".join(["1"] * 14), name="x", level=3), "agency.code"),
        (
            pb.Agency(code="000.00.98.H27", name="", level=3, parent_code="000.00.00.H27"),
            "agency.name",
        ),
        (
            pb.Agency(code="000.00.98.H27", name="Sở\x07", level=3, parent_code="000.00.00.H27"),
            "agency.name",
        ),
        (
            pb.Agency(code="000.00.98.H27", name="Sở X", level=0, parent_code="000.00.00.H27"),
            "agency.level",
        ),
        (pb.Agency(code="000.00.98.H27'; --", name="Sở X", level=3), "agency.code"),
    ],
)
async def test_create_agency_bad_input(
    demo: Running, admin_token: str, agency: pb.Agency, field: str
) -> None:
    before = counts(demo)
    async with channel(demo.grpc_address) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await admin_pb2_grpc.AdminServiceStub(ch).CreateAgency(
                apb.CreateAgencyRequest(agency=agency), metadata=md(admin_token)
            )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_of(e.value) == field
    assert counts(demo) == before


async def test_agency_lifecycle_with_etags(demo: Running, admin_token: str) -> None:
    async with channel(demo.grpc_address) as ch:
        admin = admin_pb2_grpc.AdminServiceStub(ch)
        ident = identity_pb2_grpc.IdentityServiceStub(ch)
        new = pb.Agency(
            code="000.00.31.H27",
            name="Sở Khoa học và Công nghệ",
            short_name="SKHCN",
            level=pb.AGENCY_LEVEL_DEPARTMENT,
            parent_code="000.00.00.H27",
        )
        created = (
            await admin.CreateAgency(apb.CreateAgencyRequest(agency=new), metadata=md(admin_token))
        ).agency
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await admin.CreateAgency(apb.CreateAgencyRequest(agency=new), metadata=md(admin_token))
        assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
        change = pb.Agency(code=created.code, etag=created.etag, mail_domain="skhcn.hatinh.gov.vn")
        updated = (
            await admin.UpdateAgency(
                apb.UpdateAgencyRequest(
                    agency=change, update_mask=FieldMask(paths=["mail_domain"])
                ),
                metadata=md(admin_token),
            )
        ).agency
        assert updated.etag != created.etag and updated.mail_domain == "skhcn.hatinh.gov.vn"
        with pytest.raises(grpc.aio.AioRpcError) as e:  # stale etag
            await admin.UpdateAgency(
                apb.UpdateAgencyRequest(
                    agency=change, update_mask=FieldMask(paths=["mail_domain"])
                ),
                metadata=md(admin_token),
            )
        assert e.value.code() == grpc.StatusCode.ABORTED
        with pytest.raises(grpc.aio.AioRpcError) as e:  # has active children
            await admin.DisableAgency(
                apb.DisableAgencyRequest(code="000.00.12.H27"), metadata=md(admin_token)
            )
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        tree = await ident.GetAgencyTree(pb.GetAgencyTreeRequest(), metadata=md(admin_token))
        (root,) = tree.roots
        assert root.agency.code == "000.00.00.H27"
        assert "000.00.31.H27" in [c.agency.code for c in root.children]
        found = await ident.ListAgencies(
            pb.ListAgenciesRequest(query="khoa hoc"), metadata=md(admin_token)
        )
        assert [a.code for a in found.agencies] == ["000.00.31.H27"]  # accent-insensitive


async def test_users_roles_paging_and_idempotent_create(demo: Running, admin_token: str) -> None:
    async with channel(demo.grpc_address) as ch:
        admin = admin_pb2_grpc.AdminServiceStub(ch)
        ident = identity_pb2_grpc.IdentityServiceStub(ch)
        rid = str(uuid.uuid4())
        name = f"vt{uuid.uuid4().hex[:6]}.stp"
        req = apb.CreateUserRequest(
            user=pb.User(
                username=name,
                display_name="Lê Thị Hoa",
                agency_code="000.00.12.H27",
                email=f"{name.split('.')[0]}@stp.hatinh.gov.vn",
                position="Văn thư",
            ),
            request_id=rid,
        )
        first = await admin.CreateUser(req, metadata=md(admin_token))
        again = await admin.CreateUser(req, metadata=md(admin_token))
        assert first.one_time_password and again.user.id == first.user.id
        granted = await admin.GrantRole(
            apb.GrantRoleRequest(
                user_id=first.user.id, role=pb.ROLE_CLERK, agency_code="000.00.12.H27"
            ),
            metadata=md(admin_token),
        )
        assert [(g.role, g.agency_code) for g in granted.user.role_grants] == [
            (pb.ROLE_CLERK, "000.00.12.H27")
        ]
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await admin.GrantRole(
                apb.GrantRoleRequest(
                    user_id=first.user.id, role=pb.ROLE_CLERK, agency_code="1.2.3.X99"
                ),
                metadata=md(admin_token),
            )
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await admin.CreateUser(apb.CreateUserRequest(user=req.user), metadata=md(admin_token))
        assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
        stale = pb.User(id=first.user.id, etag=first.user.etag, position="Chuyên viên")
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await admin.UpdateUser(
                apb.UpdateUserRequest(user=stale, update_mask=FieldMask(paths=["position"])),
                metadata=md(admin_token),
            )
        assert e.value.code() == grpc.StatusCode.ABORTED
        # Paging through one agency's officials, ordered by username, with a total.
        seen: list[str] = []
        token = ""
        while True:
            page = await ident.ListUsers(
                pb.ListUsersRequest(
                    agency_code="000.00.12.H27",
                    include_sub_agencies=True,
                    page_size=3,
                    page_token=token,
                ),
                metadata=md(admin_token),
            )
            seen += [u.username for u in page.users]
            token = page.next_page_token
            if not token:
                break
        assert seen == sorted(seen) and len(seen) == page.total_size and name in seen
        clerks = await ident.ListUsers(
            pb.ListUsersRequest(role=pb.ROLE_CLERK, query="lê thị hoa"), metadata=md(admin_token)
        )
        assert [u.username for u in clerks.users] == [name]
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await ident.ListUsers(
                pb.ListUsersRequest(page_token="not-a-token"), metadata=md(admin_token)
            )
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        disabled = await admin.DisableUser(
            apb.DisableUserRequest(id=first.user.id, reason="Nghỉ hưu"), metadata=md(admin_token)
        )
        assert disabled.user.status == pb.USER_STATUS_DISABLED
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await ident.GetUser(pb.GetUserRequest(username="khong.co.ai"), metadata=md(admin_token))
        assert e.value.code() == grpc.StatusCode.NOT_FOUND


async def test_client_systems(demo: Running, admin_token: str) -> None:
    async with channel(demo.grpc_address) as ch:
        admin = admin_pb2_grpc.AdminServiceStub(ch)
        made = await admin.CreateClientSystem(
            apb.CreateClientSystemRequest(
                client=pb.ClientSystem(
                    client_id="qlvb-thachha",
                    display_name="Quản lý văn bản xã Thạch Hà",
                    owner_agency_code="000.00.63.H27",
                )
            ),
            metadata=md(admin_token),
        )
        assert len(made.client_secret) >= 32
        kc = KeycloakOpenID(
            server_url=demo.base_url,
            realm_name="lgsp",
            client_id="qlvb-thachha",
            client_secret_key=made.client_secret,
        )
        tok = await asyncio.to_thread(kc.token, grant_type="client_credentials")
        who = await identity_pb2_grpc.IdentityServiceStub(ch).WhoAmI(
            pb.WhoAmIRequest(), metadata=md(tok["access_token"])
        )
        assert (
            who.subject == "client:qlvb-thachha" and who.client.owner_agency_code == "000.00.63.H27"
        )
        await admin.DisableClientSystem(
            apb.DisableClientSystemRequest(client_id="qlvb-thachha"), metadata=md(admin_token)
        )
        from keycloak.exceptions import KeycloakAuthenticationError

        with pytest.raises(KeycloakAuthenticationError):
            await asyncio.to_thread(kc.token, grant_type="client_credentials")
        listed = await admin.ListClientSystems(
            apb.ListClientSystemsRequest(owner_agency_code="000.00.63.H27"),
            metadata=md(admin_token),
        )
        assert [c.status for c in listed.clients] == [pb.CLIENT_SYSTEM_STATUS_DISABLED]
