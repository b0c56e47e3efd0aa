"""The diagnostics Echo every LGSP server answers (a public method, see PUBLIC_METHODS)."""

from __future__ import annotations

import grpc.aio

from lgsp.api.diagnostics.v1 import diagnostics_pb2, diagnostics_pb2_grpc
from lgsp.auth import current_principal
from lgsp.grpc.errors import InvalidArgument

MAX_ECHO_MESSAGE_BYTES = 64 * 1024


class DiagnosticsServicer(diagnostics_pb2_grpc.DiagnosticsServiceServicer):
    """Echoes the request with the caller and the answering service's name."""

    def __init__(self, service_name: str) -> None:
        self.service_name = service_name

    async def Echo(
        self, request: diagnostics_pb2.EchoRequest, context: grpc.aio.ServicerContext
    ) -> diagnostics_pb2.EchoResponse:
        if len(request.message.encode()) > MAX_ECHO_MESSAGE_BYTES:
            raise InvalidArgument("message", f"at most {MAX_ECHO_MESSAGE_BYTES} bytes of UTF-8")
        return diagnostics_pb2.EchoResponse(
            message=request.message,
            payload=request.payload,
            caller=current_principal().subject,
            service=self.service_name,
        )
