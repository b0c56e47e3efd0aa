"""Clients of the national systems, each a resilient HTTP client with typed results.

    async with PopulationClient.from_settings(load_settings()) as population:
        result = await population.verify_citizen("026093660531", "Nguyễn Đức Minh", "1993-08-07")

Errors are those of lgsp.connectors.errors; see docs/national.md for the systems' APIs.
"""

from lgsp.connectors.business_registry import BusinessRegistryClient, Enterprise
from lgsp.connectors.document_axis import AxisPackage, DocumentAxisClient, SentPackage
from lgsp.connectors.errors import (
    CircuitOpen,
    Conflict,
    ConnectorError,
    DeadlineExceeded,
    Forbidden,
    InvalidRequest,
    NotFound,
    Unauthorized,
    Unavailable,
)
from lgsp.connectors.http import ClientOptions, ResilientClient
from lgsp.connectors.payment import Payment, PaymentClient
from lgsp.connectors.population import CitizenVerification, Household, PopulationClient
from lgsp.connectors.public_service_portal import PortalDossier, PublicServicePortalClient
from lgsp.connectors.resilience import CircuitBreaker, RetryPolicy, TTLCache

__all__ = [
    "AxisPackage",
    "BusinessRegistryClient",
    "CircuitBreaker",
    "CircuitOpen",
    "CitizenVerification",
    "ClientOptions",
    "Conflict",
    "ConnectorError",
    "DeadlineExceeded",
    "DocumentAxisClient",
    "Enterprise",
    "Forbidden",
    "Household",
    "InvalidRequest",
    "NotFound",
    "Payment",
    "PaymentClient",
    "PopulationClient",
    "PortalDossier",
    "PublicServicePortalClient",
    "ResilientClient",
    "RetryPolicy",
    "SentPackage",
    "TTLCache",
    "Unauthorized",
    "Unavailable",
]
