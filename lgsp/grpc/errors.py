"""Errors services raise; the error interceptor turns them into gRPC statuses.

Code paths raise these instead of calling `context.abort`, so the same function works behind
gRPC, in an event handler or in a test. Each maps to one status code and, where Google's
error model has one, a rich detail (google.rpc.BadRequest, ResourceInfo, ErrorInfo,
PreconditionFailure, RetryInfo) that clients read with `grpc_status.rpc_status`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message as ProtoMessage
from google.rpc import code_pb2, error_details_pb2, status_pb2

__all__ = [
    "Aborted",
    "AlreadyExists",
    "DeadlineExceeded",
    "FailedPrecondition",
    "InvalidArgument",
    "InvalidArguments",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "ServiceError",
    "Unauthenticated",
    "Unavailable",
    "to_status",
]

# The detail is sent in this trailing metadata key (the gRPC convention grpc_status reads).
DETAILS_KEY = "grpc-status-details-bin"


class ServiceError(Exception):
    """Base: a failure the caller should see, with a status code and a safe message."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, *details: ProtoMessage) -> None:
        super().__init__(message)
        self.message = message
        self.details: tuple[ProtoMessage, ...] = details

    def status(self) -> status_pb2.Status:
        """The google.rpc.Status carried in the trailers."""
        packed = []
        for detail in self.details:
            any_detail = any_pb2.Any()
            any_detail.Pack(detail)
            packed.append(any_detail)
        return status_pb2.Status(code=self.code.value[0], message=self.message, details=packed)


class InvalidArgument(ServiceError):
    """A request field is malformed (INVALID_ARGUMENT + BadRequest naming the field)."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, description: str, *, message: str | None = None) -> None:
        self.violations: tuple[tuple[str, str], ...] = ((field, description),)
        super().__init__(
            message or f"invalid {field}: {description}", _bad_request(self.violations)
        )


class InvalidArguments(InvalidArgument):
    """Several fields are malformed at once: one BadRequest with a violation per field."""

    def __init__(
        self, violations: Iterable[tuple[str, str]], *, message: str | None = None
    ) -> None:
        items = tuple(violations)
        if not items:
            raise ValueError("InvalidArguments needs at least one (field, description)")
        ServiceError.__init__(
            self,
            message or "invalid " + ", ".join(field for field, _ in items),
            _bad_request(items),
        )
        self.violations = items


def _bad_request(violations: Sequence[tuple[str, str]]) -> error_details_pb2.BadRequest:
    return error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
            for f, d in violations
        ]
    )


class NotFound(ServiceError):
    """The named resource does not exist (NOT_FOUND + ResourceInfo when named)."""

    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, message: str, *, resource_type: str = "", resource_name: str = "") -> None:
        super().__init__(message, *_resource_info(resource_type, resource_name))


def _resource_info(resource_type: str, resource_name: str) -> tuple[ProtoMessage, ...]:
    if not (resource_type or resource_name):
        return ()
    return (
        error_details_pb2.ResourceInfo(resource_type=resource_type, resource_name=resource_name),
    )


class AlreadyExists(ServiceError):
    """The resource to create exists already (ALREADY_EXISTS + ResourceInfo when named)."""

    code = grpc.StatusCode.ALREADY_EXISTS

    def __init__(self, message: str, *, resource_type: str = "", resource_name: str = "") -> None:
        super().__init__(message, *_resource_info(resource_type, resource_name))


class FailedPrecondition(ServiceError):
    """The state forbids the operation, e.g. issuing a document that is not signed."""

    code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, message: str, *, type: str = "", subject: str = "") -> None:
        details = (
            (
                error_details_pb2.PreconditionFailure(
                    violations=[
                        error_details_pb2.PreconditionFailure.Violation(
                            type=type, subject=subject, description=message
                        )
                    ]
                ),
            )
            if type or subject
            else ()
        )
        super().__init__(message, *details)


class Aborted(ServiceError):
    """A concurrent change won (optimistic concurrency); the client may re-read and retry."""

    code = grpc.StatusCode.ABORTED


class PermissionDenied(ServiceError):
    """The caller is known but may not do this."""

    code = grpc.StatusCode.PERMISSION_DENIED

    def __init__(self, message: str = "permission denied", *details: ProtoMessage) -> None:
        super().__init__(message, *details)


class Unauthenticated(ServiceError):
    """No valid credentials came with the call."""

    code = grpc.StatusCode.UNAUTHENTICATED

    def __init__(self, message: str = "authentication required", *details: ProtoMessage) -> None:
        super().__init__(message, *details)


class _Retryable(ServiceError):
    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        details: tuple[ProtoMessage, ...] = ()
        if retry_after is not None:
            delay = duration_pb2.Duration()
            delay.FromNanoseconds(int(retry_after * 1e9))
            details = (error_details_pb2.RetryInfo(retry_delay=delay),)
        super().__init__(message, *details)


class ResourceExhausted(_Retryable):
    """A quota or rate limit is used up (RESOURCE_EXHAUSTED + RetryInfo if known)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(_Retryable):
    """A dependency is down for now; safe to retry (UNAVAILABLE + RetryInfo if known)."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(_Retryable):
    """A dependency did not answer within the call's deadline; a retry may succeed."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


def to_status(error: ServiceError) -> tuple[grpc.StatusCode, str, tuple[tuple[str, bytes], ...]]:
    """(code, message, trailing metadata) for `context.abort`."""
    status = error.status()
    return error.code, error.message, ((DETAILS_KEY, status.SerializeToString()),)


def internal_status(message: str) -> tuple[grpc.StatusCode, str, tuple[tuple[str, bytes], ...]]:
    """A generic INTERNAL status (the real cause stays in the server's log)."""
    status = status_pb2.Status(code=code_pb2.INTERNAL, message=message)
    return grpc.StatusCode.INTERNAL, message, ((DETAILS_KEY, status.SerializeToString()),)
