"""gRPC TemplateService: proto request → use case → proto response.

The servicer only translates. Domain refusals become the platform's errors
(lgsp.grpc.errors) here, at the edge, and the server's error layer turns those into gRPC
statuses with their details (INVALID_ARGUMENT + google.rpc.BadRequest naming the field).
The use cases are synchronous (SQLAlchemy's sync engine), so they run in worker threads.
"""

from __future__ import annotations

import asyncio
from typing import Any

from lgsp.api.template.v1 import template_pb2 as pb
from lgsp.api.template.v1 import template_pb2_grpc
from lgsp.auth import current_principal
from lgsp.grpc import errors
from services._template.adapters.proto import notice_to_proto
from services._template.domain.errors import DomainError, InvalidField
from services._template.service_layer.notices import Notices


def to_service_error(e: DomainError) -> errors.ServiceError:
    """The status a domain refusal gets (add a branch per new domain error)."""
    if isinstance(e, InvalidField):
        return errors.InvalidArgument(e.field, e.reason)
    return errors.FailedPrecondition(e.message)


class TemplateServicer(template_pb2_grpc.TemplateServiceServicer):
    def __init__(self, notices: Notices) -> None:
        self.notices = notices

    async def PostNotice(
        self, request: pb.PostNoticeRequest, context: Any
    ) -> pb.PostNoticeResponse:
        author = current_principal().subject  # set by the platform's auth layer
        try:
            notice = await asyncio.to_thread(
                self.notices.post, request.agency_code, request.title, author_id=author
            )
        except DomainError as e:
            raise to_service_error(e) from None
        return pb.PostNoticeResponse(notice=notice_to_proto(notice))
