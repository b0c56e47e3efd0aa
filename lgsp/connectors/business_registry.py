"""Client of the national business registry: an enterprise (or branch) by tax code."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from lgsp.connectors.base import NationalClient
from lgsp.connectors.errors import InvalidRequest
from lgsp.connectors.identifiers import IdentifierError, parse_tax_code

ENTERPRISE_TTL_S = 3600.0  # registrations change by filing, days apart
ACTIVE = "Đang hoạt động"


@dataclass(frozen=True)
class Enterprise:
    tax_code: str
    name: str
    kind: str
    status: str
    founded_on: date
    address: str
    province: str
    representative_name: str
    representative_id_number: str
    main_business_code: str
    main_business_name: str
    charter_capital_vnd: int
    parent_tax_code: str | None

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    @property
    def is_branch(self) -> bool:
        return self.parent_tax_code is not None


class BusinessRegistryClient(NationalClient):
    system = "business_registry"

    async def get_enterprise(self, tax_code: str, *, deadline_s: float | None = None) -> Enterprise:
        """`tax_code` as written: "0101234567", or "0101234567-001" for a branch; `deadline_s`
        as in PopulationClient.verify_citizen."""
        try:
            parse_tax_code(tax_code)
        except IdentifierError as exc:
            raise InvalidRequest(
                self.system,
                "get_enterprise",
                f"invalid tax code: {exc}",
                field="tax_code",
                attempts=0,
            ) from None
        reply = await self.http.call(
            "get_enterprise",
            "GET",
            "/api/v1/enterprises/{tax_code}",
            path={"tax_code": tax_code},
            cache_ttl_s=ENTERPRISE_TTL_S,
            deadline_s=deadline_s,
        )
        b = reply.body
        return Enterprise(
            tax_code=b["tax_code"],
            name=b["name"],
            kind=b["kind"],
            status=b["status"],
            founded_on=date.fromisoformat(b["founded_on"]),
            address=b["address"],
            province=b["province"],
            representative_name=b["legal_representative"]["full_name"],
            representative_id_number=b["legal_representative"]["id_number"],
            main_business_code=b["main_business"]["code"],
            main_business_name=b["main_business"]["name"],
            charter_capital_vnd=b["charter_capital_vnd"],
            parent_tax_code=b["parent_tax_code"],
        )
