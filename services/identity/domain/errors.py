"""What the identity rules answer when they say no. No gRPC, SQL or HTTP here: the gRPC edge
maps each to a status code (entrypoints/grpc.py, `to_service_error`), the HTTP edge to the
admin REST's `{"errorMessage", "field"}` or, for sign-ins and tokens, to RFC 6749 error JSON
(entrypoints/http.py)."""

from __future__ import annotations


class DomainError(Exception):
    """Base of the identity refusals; `message` is safe to show to the caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- the directory (agencies, accounts, roles, groups, clients) ------------------------------


class Invalid(DomainError, ValueError):
    """One field of a request is unacceptable; nothing has been changed (→ INVALID_ARGUMENT,
    HTTP 400, naming the field)."""

    def __init__(self, field: str, description: str) -> None:
        super().__init__(f"invalid {field}: {description}")
        self.field = field
        self.description = description


class _Named(DomainError):
    def __init__(self, message: str, *, kind: str = "", name: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name


class NotFound(_Named):
    """No such record (→ NOT_FOUND, HTTP 404; the record's kind and name when given)."""


class AlreadyExists(_Named):
    """The record to create exists already (→ ALREADY_EXISTS, HTTP 409)."""


class PermissionDenied(DomainError):
    """The actor may not do this (→ PERMISSION_DENIED, HTTP 403)."""


class FailedPrecondition(DomainError):
    """The records' state forbids the change (→ FAILED_PRECONDITION, HTTP 400)."""

    def __init__(self, message: str, *, type: str = "", subject: str = "") -> None:
        super().__init__(message)
        self.type = type
        self.subject = subject


class Stale(DomainError):
    """Someone else changed the record first: its etag is stale, or a concurrent transaction
    won (→ ABORTED, HTTP 409)."""


# --- sign-ins and tokens (the OIDC provider) -------------------------------------------------


class Refused(DomainError):
    """A sign-in, grant or token the provider does not accept (→ RFC 6749 error JSON)."""


class BadRequest(Refused):
    """A parameter the protocol requires is missing (→ invalid_request, 400)."""


class UnknownClient(Refused):
    """No such client, or it is disabled (→ invalid_client, 401)."""


class ClientNotAuthenticated(Refused):
    """The client's credentials are wrong, or a public client asks for what needs them
    (→ unauthorized_client, 401)."""


class FlowNotAllowed(Refused):
    """The client is not enabled for this flow (→ unauthorized_client, 400)."""


class BadCredentials(Refused):
    """Wrong or unknown username, password or one-time code (→ invalid_grant, 401)."""


class GrantRefused(Refused):
    """The account, session, code or refresh token is not usable now (→ invalid_grant, 400)."""


class Throttled(Refused):
    """Too many failed sign-ins from one address (→ invalid_grant, 429)."""


class InactiveToken(Refused):
    """The access token is not valid, not ours, expired or revoked (→ invalid_token, 401)."""
