"""Who is calling: the principal of the current gRPC call, its roles, and the hook that
establishes it.

The gRPC auth interceptor (lgsp.grpc.interceptors) asks an `Authenticator` for the
principal of each call and makes it available to the handler through `current_principal()`.
`lgsp.authn.JwtAuthenticator` verifies OpenID Connect access tokens (built-in provider or
Keycloak); `lgsp.authn.authenticator_from_settings()` picks the issuer from configuration.
This module imports nothing of lgsp.authn (which builds on it).
`AllowAnonymous` lets every call through as anonymous (tests, tools).

Roles are held per agency ("agency_roles" claim). A grant on agency A covers agency X when A
is X or an ancestor of X in the agency tree:

    require_role("leader", request.agency_code, tree=agency_tree)   # PermissionDenied if not
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, Protocol

__all__ = [
    "ANONYMOUS",
    "AgencyTree",
    "AllowAnonymous",
    "Authenticator",
    "Principal",
    "StaticAgencyTree",
    "current_principal",
    "principal_scope",
    "require_role",
]

_NO_GRANTS: Mapping[str, frozenset[str]] = MappingProxyType({})
_NO_CLAIMS: Mapping[str, Any] = MappingProxyType({})


class AgencyTree(Protocol):
    """The agency hierarchy, as far as authorization needs it."""

    def ancestors(self, code: str) -> Sequence[str]:
        """`code`'s parent, grandparent, … up to the root (empty for a root or unknown code)."""
        ...


class StaticAgencyTree:
    """An agency tree held in memory: `parent_of[code]` is the parent code (None for a root)."""

    def __init__(self, parent_of: Mapping[str, str | None]) -> None:
        self._parent_of = dict(parent_of)
        self._chains: dict[str, tuple[str, ...]] = {}

    def __contains__(self, code: object) -> bool:
        return code in self._parent_of

    def __len__(self) -> int:
        return len(self._parent_of)

    def ancestors(self, code: str) -> Sequence[str]:
        chain = self._chains.get(code)
        if chain is None:
            found: list[str] = []
            seen = {code}
            parent = self._parent_of.get(code)
            while parent and parent not in seen:  # `seen` guards against a cycle in bad data
                found.append(parent)
                seen.add(parent)
                parent = self._parent_of.get(parent)
            chain = self._chains[code] = tuple(found)
        return chain


@dataclass(frozen=True)
class Principal:
    """An authenticated user (official), a client system, or nobody.

    `roles` is the flat set (realm roles); `grants` maps an agency code to the roles held in
    that agency. A principal built without grants but with an agency_code holds its roles in
    that agency (what a token without the "agency_roles" claim means).
    """

    subject: str
    kind: Literal["user", "client", "anonymous"]
    agency_code: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    token: str | None = field(default=None, repr=False)  # never printed in logs
    grants: Mapping[str, frozenset[str]] = field(default_factory=lambda: _NO_GRANTS, hash=False)
    username: str | None = None
    client_id: str | None = None  # the OAuth client the token was issued to (azp)
    claims: Mapping[str, Any] = field(default_factory=lambda: _NO_CLAIMS, repr=False, compare=False)

    def __post_init__(self) -> None:
        grants = self.grants
        if not grants and self.agency_code and self.roles:
            grants = {self.agency_code: self.roles}
        # Read-only views, so a handler cannot change what later checks see.
        if not isinstance(grants, MappingProxyType):
            grants = MappingProxyType({code: frozenset(r) for code, r in grants.items()})
        object.__setattr__(self, "grants", grants)
        if not isinstance(self.claims, MappingProxyType):
            object.__setattr__(self, "claims", MappingProxyType(dict(self.claims)))

    @property
    def is_anonymous(self) -> bool:
        return self.kind == "anonymous"

    @property
    def is_client(self) -> bool:
        return self.kind == "client"

    @property
    def scopes(self) -> frozenset[str]:
        """The OAuth scopes of the token ("scope" claim)."""
        scope = self.claims.get("scope")
        return frozenset(scope.split()) if isinstance(scope, str) else frozenset()

    def has_role(
        self, role: str, agency_code: str | None = None, *, tree: AgencyTree | None = None
    ) -> bool:
        """Whether the principal holds `role`; with `agency_code`, in that agency or one of
        its ancestors (looked up in `tree`; without a tree only the agency itself counts)."""
        if agency_code is None:
            return role in self.roles or any(role in held for held in self.grants.values())
        held = self.grants.get(agency_code)
        if held is not None and role in held:
            return True
        if tree is None or not self.grants:
            return False
        for ancestor in tree.ancestors(agency_code):
            held = self.grants.get(ancestor)
            if held is not None and role in held:
                return True
        return False

    def has_any_role(
        self,
        roles: Iterable[str],
        agency_code: str | None = None,
        *,
        tree: AgencyTree | None = None,
    ) -> bool:
        return any(self.has_role(r, agency_code, tree=tree) for r in roles)


ANONYMOUS = Principal(subject="", kind="anonymous")


def require_role(
    role: str | Iterable[str],
    agency_code: str | None = None,
    *,
    tree: AgencyTree | None = None,
    principal: Principal | None = None,
) -> Principal:
    """The current caller if it holds `role` (or any of several) in `agency_code` or a parent
    agency; raises Unauthenticated for an anonymous caller, PermissionDenied otherwise."""
    # Imported here: lgsp.grpc imports this module, so a top-level import would be circular.
    from lgsp.grpc.errors import PermissionDenied, Unauthenticated

    p = current_principal() if principal is None else principal
    roles = (role,) if isinstance(role, str) else tuple(role)
    if p.is_anonymous:
        raise Unauthenticated("authentication required")
    if p.has_any_role(roles, agency_code, tree=tree):
        return p
    wanted = " or ".join(roles)
    where = f" in agency {agency_code} or a parent agency" if agency_code else ""
    raise PermissionDenied(f"role {wanted} required{where}")


class Authenticator(Protocol):
    """Turns call metadata into a principal.

    `metadata` holds the call's text metadata with lowercase keys (e.g. "authorization");
    `method` is the full gRPC method, "/package.Service/Method". Raises
    lgsp.grpc.errors.Unauthenticated (no or bad credentials) or PermissionDenied (known
    caller, not allowed to call this method).
    """

    async def authenticate(self, metadata: Mapping[str, str], method: str) -> Principal: ...


class AllowAnonymous:
    """Accepts every call as anonymous (tests and tools; services use token checks)."""

    async def authenticate(self, metadata: Mapping[str, str], method: str) -> Principal:
        return ANONYMOUS


_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar(
    "lgsp_principal", default=ANONYMOUS
)


def current_principal() -> Principal:
    """The caller of the gRPC call being handled (ANONYMOUS outside a call)."""
    return _principal.get()


class principal_scope:  # lowercase: used like a function, `with principal_scope(p):`
    """Make `principal` current for a block (the auth interceptor; event handlers; tests)."""

    __slots__ = ("_principal", "_token")

    def __init__(self, principal: Principal) -> None:
        self._principal = principal
        self._token: contextvars.Token[Principal] | None = None

    def __enter__(self) -> Principal:
        self._token = _principal.set(self._principal)
        return self._principal

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            try:
                _principal.reset(self._token)
            except ValueError:  # exited in another context (a generator resumed elsewhere)
                _principal.set(ANONYMOUS)
            self._token = None
