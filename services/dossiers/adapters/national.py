"""ApplicantVerifier over the gateway's national API (lgsp.national_api): the citizen at the
national population database, an enterprise at the business registry, called as the
dossiers service's own member (its client-credentials token).

The use cases are synchronous and run in worker threads; the gateway client is the platform's
async one. Each verification is handed to the service's event loop
(asyncio.run_coroutine_threadsafe) and the worker thread waits for it: one channel, one token
cache and one gRPC stack for the whole service, no second (sync) client to keep in step, and
the loop is free while the thread waits. The cost is a hop between threads per call (tens of
microseconds beside a national call of milliseconds).

What the gateway answers becomes a domain refusal naming the applicant's field:

    citizen     VerifyCitizen(identity_number, full_name, birth_date): all must match
    enterprise  GetEnterprise(organization_code) must be in operation ("Đang hoạt động"),
                then the person filing for it is verified as a citizen: the desk identifies
                whoever files (the legal representative or someone they authorised), so that
                person's number, name and birth date must match as well. Whether they are the
                registered representative is not required: an authorised filer brings the
                authorisation among the papers, which the official checks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Coroutine
from typing import Any

import grpc
import grpc.aio

from lgsp.national_api import NationalApi, bad_field
from services.dossiers.domain.dossier import Applicant, ApplicantKind
from services.dossiers.domain.errors import InvalidField, NotEligible, Unavailable

log = logging.getLogger("services.dossiers")

POPULATION = "the national population database"
REGISTRY = "the national business registry"
# The gateway's fields, as the applicant's.
_CITIZEN_FIELDS = {
    "id_number": "applicant.identity_number",
    "full_name": "applicant.full_name",
    "birth_date": "applicant.birth_date",
}
_RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
    }
)


def tax_code_for_registry(code: str) -> str:
    """The registry writes a branch's 13 digits as NNNNNNNNNN-NNN; the desk may type them bare."""
    code = code.strip()
    if len(code) == 13 and code.isdigit():
        return f"{code[:10]}-{code[10:]}"
    return code


class GatewayApplicantVerifier:
    def __init__(
        self, api: NationalApi, loop: asyncio.AbstractEventLoop, *, timeout_s: float = 5.0
    ) -> None:
        self.api = api
        self.loop = loop
        self.timeout_s = timeout_s

    def verify(self, applicant: Applicant) -> None:
        self._run(self._verify(applicant))

    def _run(self, work: Coroutine[Any, Any, None]) -> None:
        future = asyncio.run_coroutine_threadsafe(work, self.loop)
        try:
            # Each call is bounded by timeout_s at the gateway; this only guards the thread.
            future.result(2 * self.timeout_s + 1.0)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise Unavailable(f"{POPULATION} did not answer in time; try again") from None

    async def _verify(self, a: Applicant) -> None:
        if a.kind is ApplicantKind.ORGANIZATION:
            await self._enterprise(a)
        await self._citizen(a)

    async def _citizen(self, a: Applicant) -> None:
        if a.birth_date is None:
            raise InvalidField(
                "applicant.birth_date", f"required to verify the applicant at {POPULATION}"
            )
        try:
            answer = await self.api.verify_citizen(
                a.identity_number, a.full_name.strip(), a.birth_date.isoformat()
            )
        except grpc.aio.AioRpcError as e:
            if e.code() is grpc.StatusCode.NOT_FOUND:
                raise InvalidField(
                    "applicant.identity_number", f"unknown at {POPULATION}"
                ) from None
            if e.code() is grpc.StatusCode.INVALID_ARGUMENT:
                field = _CITIZEN_FIELDS.get(bad_field(e), "applicant")
                raise InvalidField(field, e.details() or "refused") from None
            raise self._unavailable(e, POPULATION) from None
        if not answer.full_name_matches:
            raise InvalidField(
                "applicant.full_name", f"does not match {POPULATION} for this number"
            )
        if not answer.birth_date_matches:
            raise InvalidField(
                "applicant.birth_date", f"does not match {POPULATION} for this number"
            )

    async def _enterprise(self, a: Applicant) -> None:
        code = tax_code_for_registry(a.organization_code)
        field = "applicant.organization_code"
        try:
            enterprise = await self.api.get_enterprise(code)
        except grpc.aio.AioRpcError as e:
            if e.code() is grpc.StatusCode.NOT_FOUND:
                raise InvalidField(field, f"unknown at {REGISTRY}") from None
            if e.code() is grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidField(field, e.details() or "refused") from None
            raise self._unavailable(e, REGISTRY) from None
        if not enterprise.active:
            raise NotEligible(
                f"enterprise {code} ({enterprise.name}) is '{enterprise.status}' at {REGISTRY}: "
                "only an enterprise in operation files dossiers"
            )

    @staticmethod
    def _unavailable(e: grpc.aio.AioRpcError, system: str) -> Unavailable:
        code = e.code()
        if code not in _RETRYABLE:
            # PERMISSION_DENIED, UNAUTHENTICATED: the platform's configuration, not the dossier.
            log.error(
                "the gateway refused the dossiers service's national call (%s: %s); grant the "
                "member the right (lgsp access grant) or check [dossiers] client_secret",
                code.name,
                e.details(),
            )
        return Unavailable(
            f"{system} cannot be reached through the gateway now ({code.name}: {e.details()}); "
            "nothing was stored, try again"
        )
