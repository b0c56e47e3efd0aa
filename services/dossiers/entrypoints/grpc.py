"""gRPC ProcedureService, DossierService and DossierLookupService: proto request → use case →
proto response. Domain refusals become the platform's errors (lgsp.grpc.errors) here; the
server's error layer turns those into gRPC statuses (INVALID_ARGUMENT with a BadRequest naming
the field, FAILED_PRECONDITION for an illegal status jump, NOT_FOUND, ABORTED, and
PERMISSION_DENIED from the role checks). Use cases are synchronous: they run in threads."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from lgsp.api.dossiers.v1 import dossiers_pb2 as pb
from lgsp.api.dossiers.v1 import dossiers_pb2_grpc
from lgsp.auth import current_principal
from lgsp.grpc import errors
from lgsp.netaddr import TrustedProxies, peer_host
from lgsp.ratelimit import KeyedBuckets
from lgsp.telemetry import tag_business_keys
from services.dossiers.adapters.proto import (
    applicant_from_proto,
    channel_from_proto,
    dossier_to_proto,
    figures_to_proto,
    history_to_proto,
    lookup_to_proto,
    papers_from_proto,
    procedure_from_proto,
    procedure_to_proto,
)
from services.dossiers.domain import errors as domain
from services.dossiers.service_layer.dossiers import DossiersApp
from services.dossiers.service_layer.listing import ListRequest

T = TypeVar("T")


def to_service_error(e: domain.DomainError) -> errors.ServiceError:
    """The status a domain refusal gets."""
    if isinstance(e, domain.InvalidField):
        return errors.InvalidArgument(e.field, e.reason)
    if isinstance(e, domain.NotFound):
        return errors.NotFound(e.message)
    if isinstance(e, domain.AlreadyExists):
        return errors.AlreadyExists(e.message)
    if isinstance(e, domain.StaleEtag):
        return errors.Aborted(e.message)
    if isinstance(e, domain.Exhausted):
        return errors.ResourceExhausted(e.message, retry_after=getattr(e, "retry_after", None))
    if isinstance(e, domain.Unavailable):
        return errors.Unavailable(e.message, retry_after=1.0)
    return errors.FailedPrecondition(e.message)


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    try:
        return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))
    except domain.DomainError as e:
        raise to_service_error(e) from None


async def acall(fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    """`call` for the use cases that wait on a remote system (they run their own threads)."""
    try:
        return await fn(*args, **kwargs)
    except domain.DomainError as e:
        raise to_service_error(e) from None


class ProcedureServicer(dossiers_pb2_grpc.ProcedureServiceServicer):
    def __init__(self, app: DossiersApp) -> None:
        self.app = app

    async def GetProcedure(self, request: pb.GetProcedureRequest, context: Any) -> Any:
        p = await call(self.app.get_procedure, request.code)
        return pb.GetProcedureResponse(procedure=procedure_to_proto(p))

    async def ListProcedures(self, request: pb.ListProceduresRequest, context: Any) -> Any:
        page = await call(
            self.app.list_procedures,
            current_principal(),
            field_code=request.field_code,
            agency_code=request.agency_code,
            min_online_level=int(request.min_online_service_level),
            include_inactive=request.include_inactive,
            query=request.query,
            size=request.page_size,
            token=request.page_token,
        )
        return pb.ListProceduresResponse(
            procedures=[procedure_to_proto(p) for p in page.procedures],
            next_page_token=page.next_page_token,
            total_size=page.total_size,
        )

    async def ListFields(self, request: pb.ListFieldsRequest, context: Any) -> Any:
        fields = await call(self.app.list_fields)
        return pb.ListFieldsResponse(fields=[pb.Field(code=f.code, name=f.name) for f in fields])

    async def CreateProcedure(self, request: pb.CreateProcedureRequest, context: Any) -> Any:
        p = await call(
            self.app.create_procedure, procedure_from_proto(request.procedure), current_principal()
        )
        return pb.CreateProcedureResponse(procedure=procedure_to_proto(p))

    async def UpdateProcedure(self, request: pb.UpdateProcedureRequest, context: Any) -> Any:
        p = await call(
            self.app.update_procedure,
            procedure_from_proto(request.procedure),
            list(request.update_mask.paths),
            request.procedure.etag,
            current_principal(),
        )
        return pb.UpdateProcedureResponse(procedure=procedure_to_proto(p))


def _tagged(d: Any) -> pb.Dossier:
    """The dossier of a one-dossier call, its keys put on the call's span."""
    tag_business_keys(dossier_id=d.id, receipt_code=d.receipt_code, agency_code=d.agency_code)
    return dossier_to_proto(d)


def _dossier_step(method: Callable[..., Any], response: type[Any]) -> Any:
    """A servicer method for a step: the use case method named, its response with the dossier."""

    async def handler(self: DossierServicer, request: Any, context: Any) -> Any:
        d = await call(method(self.app, request), current_principal())
        return response(dossier=_tagged(d))

    return handler


class DossierServicer(dossiers_pb2_grpc.DossierServiceServicer):
    def __init__(self, app: DossiersApp) -> None:
        self.app = app

    async def SubmitDossier(self, request: pb.SubmitDossierRequest, context: Any) -> Any:
        def submit() -> Any:
            return self.app.submit(
                procedure_code=request.procedure_code,
                agency_code=request.agency_code,
                applicant=applicant_from_proto(request.applicant),
                channel=channel_from_proto(request.channel),
                papers=papers_from_proto(list(request.papers)),
                request_id=request.request_id.strip(),
                principal=principal,
                postal_tracking_number=request.postal_tracking_number,
                postmark_date=request.postmark_date,
            )

        principal = current_principal()
        d = await call(submit)
        return pb.SubmitDossierResponse(dossier=_tagged(d))

    AcceptDossier = _dossier_step(
        lambda app, r: functools.partial(app.accept, r.dossier_id, r.etag), pb.AcceptDossierResponse
    )
    RefuseDossier = _dossier_step(
        lambda app, r: functools.partial(app.refuse, r.dossier_id, r.etag, r.reason),
        pb.RefuseDossierResponse,
    )
    StartProcessing = _dossier_step(
        lambda app, r: functools.partial(
            app.start_processing, r.dossier_id, r.etag, r.handler_user_id
        ),
        pb.StartProcessingResponse,
    )
    RequestSupplement = _dossier_step(
        lambda app, r: functools.partial(
            app.request_supplement, r.dossier_id, r.etag, r.reason, list(r.paper_codes)
        ),
        pb.RequestSupplementResponse,
    )
    WithdrawDossier = _dossier_step(
        lambda app, r: functools.partial(app.withdraw, r.dossier_id, r.etag, r.reason),
        pb.WithdrawDossierResponse,
    )
    CompleteProcessing = _dossier_step(
        lambda app, r: functools.partial(
            app.complete, r.dossier_id, r.etag, r.result_number, r.result_attachment_id, r.comment
        ),
        pb.CompleteProcessingResponse,
    )

    async def RequestFee(self, request: pb.RequestFeeRequest, context: Any) -> Any:
        d = await acall(
            self.app.request_fee,
            request.dossier_id,
            request.etag,
            request.fee_vnd,
            request.description,
            current_principal(),
            pay_at_counter=request.pay_at_counter,
        )
        return pb.RequestFeeResponse(dossier=_tagged(d))

    async def RecordPayment(self, request: pb.RecordPaymentRequest, context: Any) -> Any:
        d = await acall(
            self.app.record_payment,
            request.dossier_id,
            request.etag,
            request.amount_vnd,
            request.payment_reference,
            current_principal(),
        )
        return pb.RecordPaymentResponse(dossier=_tagged(d))

    StopDossier = _dossier_step(
        lambda app, r: functools.partial(app.stop, r.dossier_id, r.etag, r.reason),
        pb.StopDossierResponse,
    )
    ReturnResult = _dossier_step(
        lambda app, r: functools.partial(app.return_result, r.dossier_id, r.etag, r.received_by),
        pb.ReturnResultResponse,
    )

    async def SupplementDossier(self, request: pb.SupplementDossierRequest, context: Any) -> Any:
        d = await call(
            self.app.supplement,
            request.dossier_id,
            request.etag,
            papers_from_proto(list(request.papers)),
            current_principal(),
        )
        return pb.SupplementDossierResponse(dossier=_tagged(d))

    async def GetDossier(self, request: pb.GetDossierRequest, context: Any) -> Any:
        key = request.WhichOneof("key")
        if key is None:
            raise errors.InvalidArgument("key", "id or receipt_code required")
        d = await call(
            self.app.get,
            dossier_id=request.id if key == "id" else "",
            receipt=request.receipt_code if key == "receipt_code" else "",
            principal=current_principal(),
        )
        return pb.GetDossierResponse(dossier=_tagged(d))

    async def ListDossiers(self, request: pb.ListDossiersRequest, context: Any) -> Any:
        r = ListRequest(
            page_size=request.page_size,
            page_token=request.page_token,
            agency_code=request.agency_code,
            procedure_code=request.procedure_code,
            statuses=tuple(int(s) for s in request.statuses),
            handler_user_id=request.handler_user_id,
            from_date=request.from_date,
            to_date=request.to_date,
            overdue_only=request.overdue_only,
            query=request.query,
        )
        page = await call(self.app.list_dossiers, r, current_principal())
        return pb.ListDossiersResponse(
            dossiers=[dossier_to_proto(d) for d in page.dossiers],
            next_page_token=page.next_page_token,
            total_size=page.total_size,
        )

    async def GetDossierFigures(self, request: pb.GetDossierFiguresRequest, context: Any) -> Any:
        f = await call(
            self.app.figures,
            principal=current_principal(),
            agency_code=request.agency_code,
            include_sub_agencies=request.include_sub_agencies,
            procedure_code=request.procedure_code,
            from_date=request.from_date,
            to_date=request.to_date,
            grouping=int(request.grouping),
        )
        return pb.GetDossierFiguresResponse(
            total=figures_to_proto(f.total), rows=[figures_to_proto(r) for r in f.rows]
        )

    async def ListDossierHistory(self, request: pb.ListDossierHistoryRequest, context: Any) -> Any:
        entries = await call(self.app.history, request.dossier_id, current_principal())
        return pb.ListDossierHistoryResponse(entries=[history_to_proto(e) for e in entries])

    async def GetReceiptSlip(self, request: pb.GetReceiptSlipRequest, context: Any) -> Any:
        pdf, name = await call(self.app.receipt_slip, request.dossier_id, current_principal())
        return pb.GetReceiptSlipResponse(pdf=pdf, file_name=name)

    async def IssueApology(self, request: pb.IssueApologyRequest, context: Any) -> Any:
        r = request
        d, pdf = await call(
            self.app.issue_apology,
            r.dossier_id,
            r.etag,
            r.new_due_date,
            r.reason,
            current_principal(),
        )
        return pb.IssueApologyResponse(
            dossier=_tagged(d), pdf=pdf, file_name=f"phieu-xin-loi-{d.receipt_code}.pdf"
        )

    async def GetApologyLetter(self, request: pb.GetApologyLetterRequest, context: Any) -> Any:
        pdf, name = await call(self.app.apology_letter, request.dossier_id, current_principal())
        return pb.GetApologyLetterResponse(pdf=pdf, file_name=name)


class DossierLookupServicer(dossiers_pb2_grpc.DossierLookupServiceServicer):
    """Public (no token): rate-limited per client address before any work, on top of the
    lock on wrong verifications per receipt code the use cases keep. The client is the peer,
    or, from a trusted proxy (the gateway), the address it appended to x-forwarded-for."""

    def __init__(
        self,
        app: DossiersApp,
        limits: KeyedBuckets | None = None,
        proxies: TrustedProxies | None = None,
    ) -> None:
        self.app = app
        self.limits = limits or KeyedBuckets(LOOKUP_PER_MINUTE, LOOKUP_BURST)
        self.proxies = proxies or TrustedProxies()

    def client(self, context: Any) -> str:
        forwarded = None
        for key, value in context.invocation_metadata() or ():
            if key == "x-forwarded-for" and isinstance(value, str):
                forwarded = value if forwarded is None else f"{forwarded}, {value}"
        return self.proxies.client(peer_host(str(context.peer() or "")), forwarded)

    def _admit(self, context: Any) -> None:
        wait = self.limits.take(self.client(context))
        if wait:
            raise errors.ResourceExhausted(
                f"too many lookups from this address; retry in {wait:.0f} s", retry_after=wait
            )

    async def LookupDossier(self, request: pb.LookupDossierRequest, context: Any) -> Any:
        self._admit(context)
        d, agency_name = await call(self.app.lookup, request.receipt_code, request.verification)
        return lookup_to_proto(d, agency_name)

    async def RateDossier(self, request: pb.RateDossierRequest, context: Any) -> Any:
        self._admit(context)
        d, agency_name = await call(
            self.app.rate, request.receipt_code, request.verification, int(request.rating)
        )
        return pb.RateDossierResponse(dossier=lookup_to_proto(d, agency_name))


# Per client address when not configured ([dossiers] lookup_per_minute, lookup_burst): a
# citizen looks up a few times a day; 30 a minute with a burst of 10 leaves room for a family
# or an office behind one address.
LOOKUP_PER_MINUTE, LOOKUP_BURST = 30, 10
