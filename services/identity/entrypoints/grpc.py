"""The gRPC servicers (IdentityService, AdminService) and the identity service's own token
check: proto in, directory call in a worker thread, proto out."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from lgsp.api.identity.v1 import admin_pb2 as apb
from lgsp.api.identity.v1 import admin_pb2_grpc, identity_pb2_grpc
from lgsp.api.identity.v1 import identity_pb2 as pb
from lgsp.auth import Principal, current_principal
from lgsp.authn import JwtAuthenticator
from lgsp.grpc.errors import InvalidArgument, NotFound, Unauthenticated
from services.identity.adapters import proto
from services.identity.domain.model import ROLE_NAMES
from services.identity.service_layer.directory import REALM, Actor, Directory
from services.identity.service_layer.tokens import OAuthError, Tokens

IDENTITY_METHODS = ("/lgsp.api.identity.v1.IdentityService/", "/lgsp.api.identity.v1.AdminService/")


class LocalIntrospector:
    """lgsp.authn's Introspector answered from this provider's own database: a revoked token,
    an ended session or a disabled account is refused at once (no HTTP, no cache)."""

    def __init__(self, tokens: Tokens) -> None:
        self.tokens = tokens

    async def is_active(self, token: str) -> bool:
        try:
            await asyncio.to_thread(self.tokens.verify, REALM, token)
        except OAuthError:
            return False
        return True

    async def aclose(self) -> None:
        return None


def local_authenticator(tokens: Tokens, jwks_app: Any) -> JwtAuthenticator:
    """The platform's JwtAuthenticator (so the Principal is built exactly as in every other
    service, by lgsp.authn.principal_from_claims) with two local twists: the JWKS is read from
    this process's own OIDC app in memory (ASGI transport: the service never calls itself over
    the network, and works before its HTTP port is up), and every identity method is checked
    against the sessions and revocations in the database (LocalIntrospector)."""
    issuer = tokens.issuer(REALM)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=jwks_app), base_url=tokens.base_url
    )
    return JwtAuthenticator(
        issuer,
        http_client=client,
        introspection=LocalIntrospector(tokens),
        sensitive_methods=IDENTITY_METHODS,
        # A JWKS read is in-process and cheap: follow a key rotation within a second.
        min_refresh_interval_s=1.0,
    )


def caller_id(p: Principal) -> str:
    """A user id, or "client:<client_id>" for a client system (the identity API's contract;
    lgsp.authn gives a client token's `sub`, its service-account user id, as the subject)."""
    return f"client:{p.client_id}" if p.is_client and p.client_id else p.subject


def actor() -> Actor:
    p = current_principal()
    if p.is_anonymous:
        raise Unauthenticated("a Bearer access token is required")
    return Actor(id=caller_id(p), roles=p.roles)


def _mask(m: Any) -> list[str]:
    return list(m.paths)


def _role(number: int) -> str:
    if number not in ROLE_NAMES:
        raise InvalidArgument("role", "is required (ROLE_CLERK, ROLE_SPECIALIST, …)")
    return ROLE_NAMES[number]


class IdentityServicer(identity_pb2_grpc.IdentityServiceServicer):
    def __init__(self, directory: Directory, tokens: Tokens) -> None:
        self.d = directory
        self.tokens = tokens

    async def WhoAmI(self, request: pb.WhoAmIRequest, context: Any) -> pb.WhoAmIResponse:
        p = current_principal()
        if p.is_anonymous or not p.token:
            raise Unauthenticated("a Bearer access token is required")
        claims = p.claims  # verified, and checked against revocation, by the authenticator
        out = pb.WhoAmIResponse(subject=caller_id(p), scopes=str(claims.get("scope", "")).split())
        out.expire_time.FromSeconds(int(claims["exp"]))
        if p.kind == "client":

            def client() -> pb.ClientSystem:
                with self.d.read() as s:
                    return proto.client(self.d.get_client_row(s, str(claims["client_id"])))

            out.client.CopyFrom(await asyncio.to_thread(client))
        elif claims.get("iss", "").endswith("/lgsp"):
            out.user.CopyFrom(await asyncio.to_thread(self.d.get_user, user_id=str(claims["sub"])))
        return out

    async def GetUser(self, request: pb.GetUserRequest, context: Any) -> pb.GetUserResponse:
        which = request.WhichOneof("key")
        if which is None or not getattr(request, which):
            raise InvalidArgument("key", "give id or username")
        kwargs = {"user_id": request.id} if which == "id" else {"username": request.username}
        return pb.GetUserResponse(user=await asyncio.to_thread(lambda: self.d.get_user(**kwargs)))

    async def ListUsers(self, request: pb.ListUsersRequest, context: Any) -> pb.ListUsersResponse:
        return await asyncio.to_thread(self.d.list_users, request)

    async def GetAgency(self, request: pb.GetAgencyRequest, context: Any) -> pb.GetAgencyResponse:
        if not request.code:
            raise InvalidArgument("code", "is required")
        return pb.GetAgencyResponse(agency=await asyncio.to_thread(self.d.get_agency, request.code))

    async def ListAgencies(
        self, request: pb.ListAgenciesRequest, context: Any
    ) -> pb.ListAgenciesResponse:
        return await asyncio.to_thread(self.d.list_agencies, request)

    async def GetAgencyTree(
        self, request: pb.GetAgencyTreeRequest, context: Any
    ) -> pb.GetAgencyTreeResponse:
        roots = await asyncio.to_thread(
            self.d.agency_tree, request.root_code, request.max_depth, request.include_disabled
        )
        return pb.GetAgencyTreeResponse(roots=roots)

    async def GetGroup(self, request: pb.GetGroupRequest, context: Any) -> pb.GetGroupResponse:
        if not request.id:
            raise InvalidArgument("id", "is required")
        return pb.GetGroupResponse(group=await asyncio.to_thread(self.d.get_group, request.id))

    async def ListGroups(
        self, request: pb.ListGroupsRequest, context: Any
    ) -> pb.ListGroupsResponse:
        return await asyncio.to_thread(self.d.list_groups, request)


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    def __init__(self, directory: Directory) -> None:
        self.d = directory

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, actor(), *args, **kwargs)

    async def CreateUser(self, request: apb.CreateUserRequest, context: Any) -> Any:
        user, otp = await self._run(
            self.d.create_user,
            request.user,
            password=request.initial_password,
            request_id=request.request_id,
        )
        return apb.CreateUserResponse(user=user, one_time_password=otp)

    async def UpdateUser(self, request: apb.UpdateUserRequest, context: Any) -> Any:
        if not request.user.id:
            raise InvalidArgument("user.id", "is required")
        user = await self._run(self.d.update_user, request.user, _mask(request.update_mask))
        return apb.UpdateUserResponse(user=user)

    async def DisableUser(self, request: apb.DisableUserRequest, context: Any) -> Any:
        user = await self._run(
            self.d.set_user_status, request.id, request.etag, False, request.reason
        )
        return apb.DisableUserResponse(user=user)

    async def EnableUser(self, request: apb.EnableUserRequest, context: Any) -> Any:
        user = await self._run(self.d.set_user_status, request.id, request.etag, True)
        return apb.EnableUserResponse(user=user)

    async def ResetPassword(self, request: apb.ResetPasswordRequest, context: Any) -> Any:
        if request.notify_by_mail:
            raise InvalidArgument("notify_by_mail", "mail delivery of passwords is not available")
        otp = await self._run(self.d.reset_password, request.id)
        return apb.ResetPasswordResponse(one_time_password=otp)

    async def GrantRole(self, request: apb.GrantRoleRequest, context: Any) -> Any:
        if not request.agency_code:
            raise InvalidArgument("agency_code", "is required")
        user = await self._run(
            self.d.grant_role,
            request.user_id,
            _role(request.role),
            request.agency_code,
            request.include_sub_agencies,
        )
        return apb.GrantRoleResponse(user=user)

    async def RevokeRole(self, request: apb.RevokeRoleRequest, context: Any) -> Any:
        if not request.agency_code:
            raise InvalidArgument("agency_code", "is required")
        user = await self._run(
            self.d.revoke_role, request.user_id, _role(request.role), request.agency_code
        )
        return apb.RevokeRoleResponse(user=user)

    async def CreateAgency(self, request: apb.CreateAgencyRequest, context: Any) -> Any:
        return apb.CreateAgencyResponse(
            agency=await self._run(self.d.create_agency, request.agency)
        )

    async def UpdateAgency(self, request: apb.UpdateAgencyRequest, context: Any) -> Any:
        agency = await self._run(self.d.update_agency, request.agency, _mask(request.update_mask))
        return apb.UpdateAgencyResponse(agency=agency)

    async def DisableAgency(self, request: apb.DisableAgencyRequest, context: Any) -> Any:
        agency = await self._run(
            self.d.disable_agency,
            request.code,
            request.etag,
            request.successor_code,
            request.reason,
        )
        return apb.DisableAgencyResponse(agency=agency)

    async def CreateGroup(self, request: apb.CreateGroupRequest, context: Any) -> Any:
        group = await self._run(self.d.create_group, request.group, request.request_id)
        return apb.CreateGroupResponse(group=group)

    async def UpdateGroup(self, request: apb.UpdateGroupRequest, context: Any) -> Any:
        group = await self._run(self.d.update_group, request.group, _mask(request.update_mask))
        return apb.UpdateGroupResponse(group=group)

    async def DeleteGroup(self, request: apb.DeleteGroupRequest, context: Any) -> Any:
        await self._run(self.d.delete_group, request.id, request.etag)
        return apb.DeleteGroupResponse()

    async def AddGroupMembers(self, request: apb.AddGroupMembersRequest, context: Any) -> Any:
        group = await self._run(self.d.change_members, request.group_id, list(request.user_ids), [])
        return apb.AddGroupMembersResponse(group=group)

    async def RemoveGroupMembers(self, request: apb.RemoveGroupMembersRequest, context: Any) -> Any:
        group = await self._run(self.d.change_members, request.group_id, [], list(request.user_ids))
        return apb.RemoveGroupMembersResponse(group=group)

    async def CreateClientSystem(self, request: apb.CreateClientSystemRequest, context: Any) -> Any:
        client, secret, _ = await self._run(self.d.create_client, request.client)
        return apb.CreateClientSystemResponse(client=client, client_secret=secret)

    async def UpdateClientSystem(self, request: apb.UpdateClientSystemRequest, context: Any) -> Any:
        client = await self._run(self.d.update_client, request.client, _mask(request.update_mask))
        return apb.UpdateClientSystemResponse(client=client)

    async def DisableClientSystem(
        self, request: apb.DisableClientSystemRequest, context: Any
    ) -> Any:
        client = await self._run(
            self.d.disable_client, request.client_id, request.etag, request.reason
        )
        return apb.DisableClientSystemResponse(client=client)

    async def RotateClientSecret(self, request: apb.RotateClientSecretRequest, context: Any) -> Any:
        secret, client = await self._run(self.d.rotate_client_secret, request.client_id)
        return apb.RotateClientSecretResponse(client_secret=secret, client=client)

    async def ListClientSystems(self, request: apb.ListClientSystemsRequest, context: Any) -> Any:
        a = actor()
        self.d.require_platform_admin(a)
        clients, nxt = await asyncio.to_thread(self.d.list_clients, request)
        return apb.ListClientSystemsResponse(clients=clients, next_page_token=nxt)


_ = NotFound
