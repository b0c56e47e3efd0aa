"""The national systems through the gateway: lgsp.api.national.v1 answered with the
connectors of lgsp/connectors (population database, business registry).

DESIGN.md draws the gateway as the holder of the connections to the national systems: a
member system (a service of the platform or a province's own system) asks here, under the same
admission as a forwarded call (a valid token; the member, the token's client, holding an
access right on the method; its rate and concurrency limits) and with every call, allowed or
refused, in the signed message log (proxy.LoggedMethod). The national API key stays in the
gateway, and the connectors' cache and circuit breakers are shared by every caller.

A connector's failure becomes the gRPC status the caller can act on:

    InvalidRequest (400, or refused before sending)  INVALID_ARGUMENT naming the field
    NotFound (404)                                   NOT_FOUND
    DeadlineExceeded                                 DEADLINE_EXCEEDED
    Unavailable after 429                            RESOURCE_EXHAUSTED (+ RetryInfo)
    Unavailable, CircuitOpen, 5xx                    UNAVAILABLE (+ RetryInfo when known)
    Unauthorized, Forbidden (the gateway's key)      UNAVAILABLE, logged as an error: the
                                                     operator must fix [national] api_key
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import grpc.aio

from lgsp.api.national.v1 import national_pb2 as pb
from lgsp.api.national.v1 import national_pb2_grpc as pbg
from lgsp.config import Settings
from lgsp.connectors import errors as conn
from lgsp.connectors.base import NationalClient
from lgsp.connectors.business_registry import BusinessRegistryClient, Enterprise
from lgsp.connectors.http import ClientOptions
from lgsp.connectors.population import PopulationClient
from lgsp.grpc import errors
from services.gateway.proxy import LoggedMethod, Proxy

__all__ = [
    "BusinessRegistryServicer",
    "National",
    "PopulationServicer",
    "service_error",
]

log = logging.getLogger("services.gateway")

PACKAGE = "lgsp.api.national.v1"
# The log's service side of a national call: the national system's name.
SERVICE_MEMBER = "national:{system}"
# The gateway's own answer (the log entry, the trailers) needs a moment after the connector
# gives up: the connector's budget is the caller's deadline minus this.
ANSWER_MARGIN_S = 0.05
MAX_NAME = 200  # characters of a full name; longer is not a name


def service_error(e: conn.ConnectorError) -> errors.ServiceError:
    """The gRPC error a connector failure becomes (see the module docstring)."""
    what = f"{e.system}: {e.message}"
    if isinstance(e, conn.InvalidRequest):
        field = e.field or "request"  # the API's field names are the request's
        return errors.InvalidArgument(field, e.message, message=f"invalid {field}: {what}")
    if isinstance(e, conn.NotFound):
        return errors.NotFound(what, resource_type=e.system)
    if isinstance(e, conn.DeadlineExceeded):
        return errors.DeadlineExceeded(f"{what} (national system too slow)")
    if isinstance(e, conn.Unavailable):
        if e.status == 429:
            return errors.ResourceExhausted(
                f"{what} (national system's rate limit)", retry_after=e.retry_after
            )
        return errors.Unavailable(
            f"{what} (national system unavailable)", retry_after=e.retry_after
        )
    if isinstance(e, conn.Unauthorized | conn.Forbidden):
        log.error("national system %s refused the gateway's API key: %s", e.system, e)
        return errors.Unavailable(f"{e.system} refused the gateway: its configuration is wrong")
    return errors.Unavailable(what)


class National:
    """The connectors and the logged methods the servicers share."""

    def __init__(
        self,
        proxy: Proxy,
        population: PopulationClient,
        business_registry: BusinessRegistryClient,
    ) -> None:
        self.proxy = proxy
        self.population = population
        self.business_registry = business_registry

    @classmethod
    def from_settings(
        cls, proxy: Proxy, settings: Settings, options: ClientOptions | None = None
    ) -> National:
        return cls(
            proxy,
            PopulationClient.from_settings(settings, options=options),
            BusinessRegistryClient.from_settings(settings, options=options),
        )

    def method(self, service: str, name: str, system: str) -> LoggedMethod:
        return LoggedMethod(
            self.proxy, f"/{PACKAGE}.{service}/{name}", SERVICE_MEMBER.format(system=system)
        )

    async def aclose(self) -> None:
        await self.population.aclose()
        await self.business_registry.aclose()


def _budget(client: NationalClient, time_left: float | None) -> float:
    """The connector's budget: its own, or less when the caller has less `time_left`."""
    own = client.http.options.deadline_s
    return own if time_left is None else max(min(own, time_left - ANSWER_MARGIN_S), 0.001)


async def _calling(call: Callable[[], Awaitable[Any]]) -> Any:
    try:
        return await call()
    except conn.ConnectorError as e:
        raise service_error(e) from None


def check_verify_request(r: pb.VerifyCitizenRequest) -> None:
    """What is refused before any national call (the number's form: by the connector)."""
    if not r.full_name.strip():
        raise errors.InvalidArgument("full_name", "required")
    if len(r.full_name) > MAX_NAME:
        raise errors.InvalidArgument("full_name", f"longer than {MAX_NAME} characters")
    try:
        date.fromisoformat(r.birth_date)
    except ValueError:
        raise errors.InvalidArgument("birth_date", "required, a date YYYY-MM-DD") from None


class PopulationServicer(pbg.PopulationServiceServicer):
    def __init__(self, national: National) -> None:
        self.national = national
        self._verify = national.method("PopulationService", "VerifyCitizen", "population")

    async def VerifyCitizen(
        self, request: pb.VerifyCitizenRequest, context: grpc.aio.ServicerContext
    ) -> Any:
        async def work(time_left: float | None) -> pb.VerifyCitizenResponse:
            check_verify_request(request)
            v = await _calling(
                lambda: self.national.population.verify_citizen(
                    request.id_number,
                    request.full_name,
                    request.birth_date,
                    deadline_s=_budget(self.national.population, time_left),
                )
            )
            return pb.VerifyCitizenResponse(
                id_number=v.id_number,
                match=v.match,
                full_name_matches=v.full_name_matches,
                birth_date_matches=v.birth_date_matches,
            )

        return await self._verify.answered(request, context, work)


def enterprise_to_proto(e: Enterprise) -> pb.Enterprise:
    return pb.Enterprise(
        tax_code=e.tax_code,
        name=e.name,
        kind=e.kind,
        status=e.status,
        active=e.active,
        founded_on=e.founded_on.isoformat(),
        address=e.address,
        province=e.province,
        representative_name=e.representative_name,
        representative_id_number=e.representative_id_number,
        main_business_code=e.main_business_code,
        main_business_name=e.main_business_name,
        charter_capital_vnd=e.charter_capital_vnd,
        parent_tax_code=e.parent_tax_code or "",
    )


class BusinessRegistryServicer(pbg.BusinessRegistryServiceServicer):
    def __init__(self, national: National) -> None:
        self.national = national
        self._get = national.method("BusinessRegistryService", "GetEnterprise", "business_registry")

    async def GetEnterprise(
        self, request: pb.GetEnterpriseRequest, context: grpc.aio.ServicerContext
    ) -> Any:
        async def work(time_left: float | None) -> pb.GetEnterpriseResponse:
            e = await _calling(
                lambda: self.national.business_registry.get_enterprise(
                    request.tax_code,
                    deadline_s=_budget(self.national.business_registry, time_left),
                )
            )
            return pb.GetEnterpriseResponse(enterprise=enterprise_to_proto(e))

        return await self._get.answered(request, context, work)
