"""The gRPC servicers (IdentityService, AdminService) and the identity service's own token
check: proto in, use case in a worker thread, proto out.

Domain refusals become the platform's errors here (`to_service_error`): Invalid →
INVALID_ARGUMENT naming the field, NotFound → NOT_FOUND (+ ResourceInfo), AlreadyExists →
ALREADY_EXISTS, PermissionDenied → PERMISSION_DENIED, FailedPrecondition →
FAILED_PRECONDITION, Stale → ABORTED."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

import httpx

from lgsp.api.identity.v1 import admin_pb2 as apb
from lgsp.api.identity.v1 import admin_pb2_grpc, identity_pb2_grpc
from lgsp.api.identity.v1 import identity_pb2 as pb
from lgsp.auth import Principal, current_principal
from lgsp.authn import JwtAuthenticator
from lgsp.grpc import errors
from lgsp.grpc.errors import InvalidArgument, Unauthenticated
from services.identity.domain import errors as de
from services.identity.domain.access import REALM, Actor, signed_in_by_app_password
from services.identity.domain.model import ROLE_NAMES
from services.identity.service_layer.agencies import Agencies
from services.identity.service_layer.app_passwords import AppPasswords
from services.identity.service_layer.clients import Clients
from services.identity.service_layer.groups import Groups
from services.identity.service_layer.roles import Roles
from services.identity.service_layer.sessions import Sessions
from services.identity.service_layer.users import Users

IDENTITY_METHODS = ("/lgsp.api.identity.v1.IdentityService/", "/lgsp.api.identity.v1.AdminService/")


def to_service_error(e: de.DomainError) -> errors.ServiceError:
    if isinstance(e, de.Invalid):
        return errors.InvalidArgument(e.field, e.description)
    if isinstance(e, de.NotFound):
        return errors.NotFound(e.message, resource_type=e.kind, resource_name=e.name)
    if isinstance(e, de.AlreadyExists):
        return errors.AlreadyExists(e.message, resource_type=e.kind, resource_name=e.name)
    if isinstance(e, de.PermissionDenied):
        return errors.PermissionDenied(e.message)
    if isinstance(e, de.Stale):
        return errors.Aborted(e.message)
    if isinstance(e, de.FailedPrecondition):
        return errors.FailedPrecondition(e.message, type=e.type, subject=e.subject)
    if isinstance(e, de.Refused):
        return errors.Unauthenticated(e.message)
    return errors.FailedPrecondition(e.message)


def rpc(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A servicer method whose domain refusals leave as gRPC statuses."""

    @functools.wraps(fn)
    async def call(self: Any, request: Any, context: Any) -> Any:
        try:
            return await fn(self, request, context)
        except de.DomainError as e:
            raise to_service_error(e) from None

    return call


def _rpc_methods(cls: type) -> type:
    for name, fn in list(vars(cls).items()):
        if name[:1].isupper() and callable(fn):
            setattr(cls, name, rpc(fn))
    return cls


class LocalIntrospector:
    """lgsp.authn's Introspector answered from this provider's own database: a revoked token,
    an ended session or a disabled account is refused at once (no HTTP, no cache)."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def is_active(self, token: str) -> bool:
        try:
            await asyncio.to_thread(self.sessions.verify, REALM, token)
        except de.Refused:
            return False
        return True

    async def aclose(self) -> None:
        return None


def local_authenticator(sessions: Sessions, jwks_app: Any) -> JwtAuthenticator:
    """The platform's JwtAuthenticator (so the Principal is built exactly as in every other
    service, by lgsp.authn.principal_from_claims) with two local twists: the JWKS is read from
    this process's own OIDC app in memory (ASGI transport: the service never calls itself over
    the network, and works before its HTTP port is up), and every identity method is checked
    against the sessions and revocations in the database (LocalIntrospector)."""
    issuer = sessions.issuer(REALM)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=jwks_app), base_url=sessions.base_url
    )
    return JwtAuthenticator(
        issuer,
        http_client=client,
        introspection=LocalIntrospector(sessions),
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
    by_app_password = signed_in_by_app_password(p.claims)
    # A token a mail client got with an app password administers nothing.
    roles = frozenset() if by_app_password else p.roles
    return Actor(id=caller_id(p), roles=roles, by_app_password=by_app_password)


def _mask(m: Any) -> list[str]:
    return list(m.paths)


def _role(number: int) -> str:
    if number not in ROLE_NAMES:
        raise InvalidArgument("role", "is required (ROLE_CLERK, ROLE_SPECIALIST, …)")
    return ROLE_NAMES[number]


@_rpc_methods
class IdentityServicer(identity_pb2_grpc.IdentityServiceServicer):
    def __init__(
        self,
        agencies: Agencies,
        users: Users,
        groups: Groups,
        clients: Clients,
        app_passwords: AppPasswords,
    ) -> None:
        self.agencies = agencies
        self.users = users
        self.groups = groups
        self.clients = clients
        self.app_passwords = app_passwords

    async def WhoAmI(self, request: pb.WhoAmIRequest, context: Any) -> pb.WhoAmIResponse:
        p = current_principal()
        if p.is_anonymous or not p.token:
            raise Unauthenticated("a Bearer access token is required")
        claims = p.claims  # verified, and checked against revocation, by the authenticator
        out = pb.WhoAmIResponse(subject=caller_id(p), scopes=str(claims.get("scope", "")).split())
        out.expire_time.FromSeconds(int(claims["exp"]))
        if p.kind == "client":
            client = await asyncio.to_thread(self.clients.get, str(claims["client_id"]))
            out.client.CopyFrom(client)
        elif claims.get("iss", "").endswith("/lgsp"):
            user = await asyncio.to_thread(lambda: self.users.get(user_id=str(claims["sub"])))
            out.user.CopyFrom(user)
        return out

    async def GetUser(self, request: pb.GetUserRequest, context: Any) -> pb.GetUserResponse:
        which = request.WhichOneof("key")
        if which is None or not getattr(request, which):
            raise InvalidArgument("key", "give id or username")
        kwargs = {"user_id": request.id} if which == "id" else {"username": request.username}
        return pb.GetUserResponse(user=await asyncio.to_thread(lambda: self.users.get(**kwargs)))

    async def ListUsers(self, request: pb.ListUsersRequest, context: Any) -> pb.ListUsersResponse:
        return await asyncio.to_thread(self.users.list, request)

    async def GetAgency(self, request: pb.GetAgencyRequest, context: Any) -> pb.GetAgencyResponse:
        if not request.code:
            raise InvalidArgument("code", "is required")
        return pb.GetAgencyResponse(agency=await asyncio.to_thread(self.agencies.get, request.code))

    async def ListAgencies(
        self, request: pb.ListAgenciesRequest, context: Any
    ) -> pb.ListAgenciesResponse:
        return await asyncio.to_thread(self.agencies.list, request)

    async def GetAgencyTree(
        self, request: pb.GetAgencyTreeRequest, context: Any
    ) -> pb.GetAgencyTreeResponse:
        roots = await asyncio.to_thread(
            self.agencies.tree, request.root_code, request.max_depth, request.include_disabled
        )
        return pb.GetAgencyTreeResponse(roots=roots)

    async def GetGroup(self, request: pb.GetGroupRequest, context: Any) -> pb.GetGroupResponse:
        if not request.id:
            raise InvalidArgument("id", "is required")
        return pb.GetGroupResponse(group=await asyncio.to_thread(self.groups.get, request.id))

    async def ListGroups(
        self, request: pb.ListGroupsRequest, context: Any
    ) -> pb.ListGroupsResponse:
        return await asyncio.to_thread(self.groups.list, request)

    async def CreateAppPassword(
        self, request: pb.CreateAppPasswordRequest, context: Any
    ) -> pb.CreateAppPasswordResponse:
        made, secret = await asyncio.to_thread(self.app_passwords.create, actor(), request.name)
        return pb.CreateAppPasswordResponse(app_password=made, secret=secret)

    async def ListAppPasswords(
        self, request: pb.ListAppPasswordsRequest, context: Any
    ) -> pb.ListAppPasswordsResponse:
        found = await asyncio.to_thread(self.app_passwords.list_own, actor())
        return pb.ListAppPasswordsResponse(app_passwords=found)

    async def RevokeAppPassword(
        self, request: pb.RevokeAppPasswordRequest, context: Any
    ) -> pb.RevokeAppPasswordResponse:
        await asyncio.to_thread(self.app_passwords.revoke_own, actor(), request.id)
        return pb.RevokeAppPasswordResponse()


@_rpc_methods
class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    def __init__(
        self,
        agencies: Agencies,
        users: Users,
        roles: Roles,
        groups: Groups,
        clients: Clients,
        app_passwords: AppPasswords,
    ) -> None:
        self.agencies = agencies
        self.users = users
        self.roles = roles
        self.groups = groups
        self.clients = clients
        self.app_passwords = app_passwords

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, actor(), *args, **kwargs)

    async def CreateUser(self, request: apb.CreateUserRequest, context: Any) -> Any:
        user, otp = await self._run(
            self.users.create,
            request.user,
            password=request.initial_password,
            request_id=request.request_id,
        )
        return apb.CreateUserResponse(user=user, one_time_password=otp)

    async def UpdateUser(self, request: apb.UpdateUserRequest, context: Any) -> Any:
        if not request.user.id:
            raise InvalidArgument("user.id", "is required")
        user = await self._run(self.users.update, request.user, _mask(request.update_mask))
        return apb.UpdateUserResponse(user=user)

    async def DisableUser(self, request: apb.DisableUserRequest, context: Any) -> Any:
        user = await self._run(
            self.users.set_status, request.id, request.etag, False, request.reason
        )
        return apb.DisableUserResponse(user=user)

    async def EnableUser(self, request: apb.EnableUserRequest, context: Any) -> Any:
        user = await self._run(self.users.set_status, request.id, request.etag, True)
        return apb.EnableUserResponse(user=user)

    async def ResetPassword(self, request: apb.ResetPasswordRequest, context: Any) -> Any:
        if request.notify_by_mail:
            raise InvalidArgument("notify_by_mail", "mail delivery of passwords is not available")
        otp = await self._run(self.users.reset_password, request.id)
        return apb.ResetPasswordResponse(one_time_password=otp)

    async def GrantRole(self, request: apb.GrantRoleRequest, context: Any) -> Any:
        if not request.agency_code:
            raise InvalidArgument("agency_code", "is required")
        user = await self._run(
            self.roles.grant,
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
            self.roles.revoke, request.user_id, _role(request.role), request.agency_code
        )
        return apb.RevokeRoleResponse(user=user)

    async def CreateAgency(self, request: apb.CreateAgencyRequest, context: Any) -> Any:
        return apb.CreateAgencyResponse(
            agency=await self._run(self.agencies.create, request.agency)
        )

    async def UpdateAgency(self, request: apb.UpdateAgencyRequest, context: Any) -> Any:
        agency = await self._run(self.agencies.update, request.agency, _mask(request.update_mask))
        return apb.UpdateAgencyResponse(agency=agency)

    async def DisableAgency(self, request: apb.DisableAgencyRequest, context: Any) -> Any:
        agency = await self._run(
            self.agencies.disable,
            request.code,
            request.etag,
            request.successor_code,
            request.reason,
        )
        return apb.DisableAgencyResponse(agency=agency)

    async def CreateGroup(self, request: apb.CreateGroupRequest, context: Any) -> Any:
        group = await self._run(self.groups.create, request.group, request.request_id)
        return apb.CreateGroupResponse(group=group)

    async def UpdateGroup(self, request: apb.UpdateGroupRequest, context: Any) -> Any:
        group = await self._run(self.groups.update, request.group, _mask(request.update_mask))
        return apb.UpdateGroupResponse(group=group)

    async def DeleteGroup(self, request: apb.DeleteGroupRequest, context: Any) -> Any:
        await self._run(self.groups.delete, request.id, request.etag)
        return apb.DeleteGroupResponse()

    async def AddGroupMembers(self, request: apb.AddGroupMembersRequest, context: Any) -> Any:
        group = await self._run(
            self.groups.change_members, request.group_id, list(request.user_ids), []
        )
        return apb.AddGroupMembersResponse(group=group)

    async def RemoveGroupMembers(self, request: apb.RemoveGroupMembersRequest, context: Any) -> Any:
        group = await self._run(
            self.groups.change_members, request.group_id, [], list(request.user_ids)
        )
        return apb.RemoveGroupMembersResponse(group=group)

    async def CreateClientSystem(self, request: apb.CreateClientSystemRequest, context: Any) -> Any:
        client, secret, _ = await self._run(self.clients.create, request.client)
        return apb.CreateClientSystemResponse(client=client, client_secret=secret)

    async def UpdateClientSystem(self, request: apb.UpdateClientSystemRequest, context: Any) -> Any:
        client = await self._run(self.clients.update, request.client, _mask(request.update_mask))
        return apb.UpdateClientSystemResponse(client=client)

    async def DisableClientSystem(
        self, request: apb.DisableClientSystemRequest, context: Any
    ) -> Any:
        client = await self._run(
            self.clients.disable, request.client_id, request.etag, request.reason
        )
        return apb.DisableClientSystemResponse(client=client)

    async def RotateClientSecret(self, request: apb.RotateClientSecretRequest, context: Any) -> Any:
        secret, client = await self._run(self.clients.rotate_secret, request.client_id)
        return apb.RotateClientSecretResponse(client_secret=secret, client=client)

    async def ListClientSystems(self, request: apb.ListClientSystemsRequest, context: Any) -> Any:
        clients, nxt = await self._run(self.clients.list, request)
        return apb.ListClientSystemsResponse(clients=clients, next_page_token=nxt)

    async def ListUserAppPasswords(
        self, request: apb.ListUserAppPasswordsRequest, context: Any
    ) -> Any:
        if not request.user_id:
            raise InvalidArgument("user_id", "is required")
        found = await self._run(self.app_passwords.list_for, request.user_id)
        return apb.ListUserAppPasswordsResponse(app_passwords=found)

    async def RevokeUserAppPassword(
        self, request: apb.RevokeUserAppPasswordRequest, context: Any
    ) -> Any:
        if not request.user_id:
            raise InvalidArgument("user_id", "is required")
        count = await self._run(
            self.app_passwords.revoke_for, request.user_id, request.id, request.reason
        )
        return apb.RevokeUserAppPasswordResponse(revoked_count=count)
