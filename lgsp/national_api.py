"""The gateway's national API (lgsp.api.national.v1) as a platform service calls it: the
population database and the business registry, reached through the gateway with the
service's own client-credentials token (the member is that client; the gateway checks its
rights, limits it and logs each call).

    api = NationalApi.from_settings(settings, service="dossiers")
    answer = await api.verify_citizen("026093660531", "Nguyễn Đức Minh", "1993-08-07")

Failures are the gateway's gRPC errors (grpc.aio.AioRpcError); `bad_field(error)` reads the
field an INVALID_ARGUMENT names. The channel is made at the first call, inside the event
loop that makes the calls (a grpc.aio channel belongs to one loop).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
import grpc.aio
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from lgsp.api.national.v1 import national_pb2 as pb
from lgsp.api.national.v1 import national_pb2_grpc as pbg
from lgsp.config import Settings, peer

__all__ = ["NationalApi", "bad_field", "gateway_address"]

MetadataFactory = Callable[[], Awaitable[Sequence[tuple[str, str]]]]
DEFAULT_TIMEOUT_S = 5.0


def gateway_address(settings: Settings) -> str:
    """host:port of the gateway's gRPC server (lgsp.config.peer)."""
    return peer(settings, "gateway").address


def bad_field(error: grpc.aio.AioRpcError) -> str:
    """The first field an INVALID_ARGUMENT's BadRequest names ("" when none)."""
    status = rpc_status.from_call(error)
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            if bad.field_violations:
                return str(bad.field_violations[0].field)
    return ""


class NationalApi:
    def __init__(
        self,
        channel: Callable[[], grpc.aio.Channel],
        *,
        metadata: MetadataFactory | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._make_channel = channel
        self._channel: grpc.aio.Channel | None = None
        self._population: pbg.PopulationServiceStub | None = None
        self._registry: pbg.BusinessRegistryServiceStub | None = None
        self._metadata = metadata
        self.timeout_s = timeout_s
        self._on_close = on_close

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        service: str,
        client_id: str = "",
        client_secret: str = "",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        address: str = "",
    ) -> NationalApi:
        """The gateway at its configured port (or `address`), called with the token of
        `client_id` (default: the service's [<service>] client_id and client_secret, else the
        demo secret identity wrote; looked for at each call until found)."""
        from lgsp.agencies import LazyCredentials
        from lgsp.grpc.client import channel, channel_credentials

        section = settings.service(service)
        client_id = client_id or str(getattr(section, "client_id", service))
        client_secret = client_secret or str(getattr(section, "client_secret", ""))
        target = address or gateway_address(settings)
        # Until identity's secret is found the gateway answers UNAUTHENTICATED, which says why.
        token = LazyCredentials(settings, client_id, client_secret)
        tls = channel_credentials(settings)
        return cls(
            lambda: channel(target, service_name=service, credentials=tls),
            metadata=token.metadata,
            timeout_s=timeout_s,
            on_close=token.aclose,
        )

    def _stubs(self) -> tuple[pbg.PopulationServiceStub, pbg.BusinessRegistryServiceStub]:
        if self._population is None or self._registry is None:
            self._channel = self._make_channel()
            self._population = pbg.PopulationServiceStub(self._channel)
            self._registry = pbg.BusinessRegistryServiceStub(self._channel)
        return self._population, self._registry

    async def _call(self, method: Any, request: Any, timeout_s: float | None) -> Any:
        md = tuple(await self._metadata()) if self._metadata is not None else ()
        return await method(request, metadata=md, timeout=timeout_s or self.timeout_s)

    async def verify_citizen(
        self, id_number: str, full_name: str, birth_date: str, *, timeout_s: float | None = None
    ) -> pb.VerifyCitizenResponse:
        population, _ = self._stubs()
        request = pb.VerifyCitizenRequest(
            id_number=id_number, full_name=full_name, birth_date=birth_date
        )
        answer: pb.VerifyCitizenResponse = await self._call(
            population.VerifyCitizen, request, timeout_s
        )
        return answer

    async def get_enterprise(
        self, tax_code: str, *, timeout_s: float | None = None
    ) -> pb.Enterprise:
        _, registry = self._stubs()
        answer: pb.GetEnterpriseResponse = await self._call(
            registry.GetEnterprise, pb.GetEnterpriseRequest(tax_code=tax_code), timeout_s
        )
        return answer.enterprise

    async def aclose(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._population = self._registry = None
        if self._on_close is not None:
            await self._on_close()
