"""Who is calling: the principal of the current gRPC call and the hook that establishes it.

The gRPC auth interceptor (lgsp.grpc.interceptors) asks an `Authenticator` for the
principal of each call and makes it available to the handler through `current_principal()`.
Real token checks (OIDC access tokens, client credentials) plug in as another
Authenticator; until then `AllowAnonymous` lets every call through as anonymous.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

__all__ = [
    "ANONYMOUS",
    "AllowAnonymous",
    "Authenticator",
    "Principal",
    "current_principal",
    "principal_scope",
]


@dataclass(frozen=True)
class Principal:
    """An authenticated user (official), a client system, or nobody."""

    subject: str
    kind: Literal["user", "client", "anonymous"]
    agency_code: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    token: str | None = field(default=None, repr=False)  # never printed in logs

    @property
    def is_anonymous(self) -> bool:
        return self.kind == "anonymous"

    def has_role(self, role: str) -> bool:
        return role in self.roles


ANONYMOUS = Principal(subject="", kind="anonymous")


class Authenticator(Protocol):
    """Turns call metadata into a principal.

    `metadata` holds the call's text metadata with lowercase keys (e.g. "authorization");
    `method` is the full gRPC method, "/package.Service/Method". Raises
    lgsp.grpc.errors.Unauthenticated (no or bad credentials) or PermissionDenied (known
    caller, not allowed to call this method).
    """

    async def authenticate(self, metadata: Mapping[str, str], method: str) -> Principal: ...


class AllowAnonymous:
    """Accepts every call as anonymous (the default until token checks exist)."""

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
