"""Client of the national population database: verify a citizen, read a household."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from lgsp.connectors.base import NationalClient
from lgsp.connectors.errors import InvalidRequest
from lgsp.connectors.identifiers import IdentifierError, parse_citizen_id

# Registry facts change rarely (a name change, a move); five minutes of staleness is fine
# for the one-stop desk and saves a national call per form field that is re-checked.
CITIZEN_TTL_S = 300.0


@dataclass(frozen=True)
class CitizenVerification:
    id_number: str
    match: bool
    full_name_matches: bool
    birth_date_matches: bool


@dataclass(frozen=True)
class Citizen:
    id_number: str
    full_name: str
    birth_date: date
    sex: str
    ethnicity: str
    nationality: str
    hometown: str
    permanent_address: str
    household_id: str
    relation_to_head: str


@dataclass(frozen=True)
class HouseholdMember:
    id_number: str
    full_name: str
    birth_date: date
    sex: str
    relation_to_head: str


@dataclass(frozen=True)
class Household:
    household_id: str
    address: str
    province: str
    head_id_number: str
    members: tuple[HouseholdMember, ...]


class PopulationClient(NationalClient):
    system = "population"

    def _check(self, operation: str, id_number: str) -> None:
        try:
            parse_citizen_id(id_number)
        except IdentifierError as exc:
            raise InvalidRequest(
                self.system,
                operation,
                f"invalid citizen id number: {exc}",
                field="id_number",
                attempts=0,
            ) from None

    async def verify_citizen(
        self,
        id_number: str,
        full_name: str,
        birth_date: date | str,
        *,
        deadline_s: float | None = None,
    ) -> CitizenVerification:
        """`deadline_s`: the call's whole budget when shorter than the client's (a caller's
        own deadline passed down)."""
        self._check("verify_citizen", id_number)
        born = birth_date.isoformat() if isinstance(birth_date, date) else birth_date
        reply = await self.http.call(
            "verify_citizen",
            "POST",
            "/api/v1/citizens/verify",
            json_body={"id_number": id_number, "full_name": full_name, "birth_date": born},
            cache_ttl_s=CITIZEN_TTL_S,
            deadline_s=deadline_s,
        )
        b = reply.body
        return CitizenVerification(
            b["id_number"], b["match"], b["fields"]["full_name"], b["fields"]["birth_date"]
        )

    async def get_citizen(self, id_number: str) -> Citizen:
        self._check("get_citizen", id_number)
        reply = await self.http.call(
            "get_citizen",
            "GET",
            "/api/v1/citizens/{id}",
            path={"id": id_number},
            cache_ttl_s=CITIZEN_TTL_S,
        )
        b = reply.body
        return Citizen(
            b["id_number"],
            b["full_name"],
            date.fromisoformat(b["birth_date"]),
            b["sex"],
            b["ethnicity"],
            b["nationality"],
            b["hometown"],
            b["permanent_address"],
            b["household_id"],
            b["relation_to_head"],
        )

    async def get_household(self, id_number: str) -> Household:
        """The household the citizen is registered in, with every member."""
        self._check("get_household", id_number)
        reply = await self.http.call(
            "get_household",
            "GET",
            "/api/v1/citizens/{id}/household",
            path={"id": id_number},
            cache_ttl_s=CITIZEN_TTL_S,
        )
        b = reply.body
        members = tuple(
            HouseholdMember(
                m["id_number"],
                m["full_name"],
                date.fromisoformat(m["birth_date"]),
                m["sex"],
                m["relation_to_head"],
            )
            for m in b["members"]
        )
        return Household(
            b["household_id"], b["address"], b["province"], b["head_id_number"], members
        )
