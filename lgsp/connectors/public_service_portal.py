"""Client of the national public service portal: take over online dossiers, sync statuses.

Pushing a status is safe to retry: the portal recognises (receipt code, status, updated_at).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lgsp.connectors.base import NationalClient
from lgsp.connectors.errors import InvalidRequest


@dataclass(frozen=True)
class PortalStatus:
    status: int
    updated_at: str
    reason: str | None


@dataclass(frozen=True)
class PortalDossier:
    portal_code: str | None  # None for a dossier filed at the counter
    receipt_code: str | None  # set once the province took it over
    agency_code: str
    procedure_code: str
    procedure_name: str | None
    applicant: dict[str, str] | None
    submitted_at: str | None
    status: int | None
    status_updated_at: str | None
    history: tuple[PortalStatus, ...] = field(default=())
    # Papers filed online: {"paper_code", "name", "originals", "copies", "sha256"}.
    papers: tuple[dict[str, Any], ...] = field(default=())


def _dossier(b: dict[str, Any]) -> PortalDossier:
    return PortalDossier(
        b["portal_code"],
        b["receipt_code"],
        b["agency_code"],
        b["procedure_code"],
        b["procedure_name"],
        b["applicant"],
        b["submitted_at"],
        b["status"],
        b["status_updated_at"],
        tuple(
            PortalStatus(h["status"], h["updated_at"], h["reason"]) for h in b.get("history", [])
        ),
        tuple(b.get("papers") or ()),
    )


class PublicServicePortalClient(NationalClient):
    system = "public_service_portal"

    async def pull_handover(
        self, *, agency_code: str | None = None, province_code: str | None = None, limit: int = 20
    ) -> list[PortalDossier]:
        """Online dossiers not yet taken over, for one agency or a province (e.g. "H27")."""
        params: dict[str, str | int] = {"limit": limit}
        if agency_code:
            params["agency_code"] = agency_code
        elif province_code:
            params["province_code"] = province_code
        else:
            raise InvalidRequest(
                self.system,
                "pull_handover",
                "agency_code or province_code is needed",
                field="agency_code",
                attempts=0,
            )
        reply = await self.http.call("pull_handover", "GET", "/api/v1/handover", params=params)
        return [_dossier(d) for d in reply.body["dossiers"]]

    async def ack_handover(self, portal_code: str, receipt_code: str) -> PortalDossier:
        """Tell the portal the province took the dossier over under `receipt_code`."""
        reply = await self.http.call(
            "ack_handover",
            "POST",
            "/api/v1/handover/{code}/ack",
            path={"code": portal_code},
            json_body={"receipt_code": receipt_code},
        )
        return _dossier(reply.body)

    async def refuse_handover(self, portal_code: str, reason: str) -> PortalDossier:
        """Tell the portal the province refused the dossier (status 3 with `reason`, shown to
        the citizen); idempotent."""
        reply = await self.http.call(
            "refuse_handover",
            "POST",
            "/api/v1/handover/{code}/refuse",
            path={"code": portal_code},
            json_body={"reason": reason},
        )
        return _dossier(reply.body)

    async def subscribe(self, province_code: str, url: str, secret: str) -> None:
        """Register where the portal pushes the province's online dossiers, and the secret
        they are signed with (lgsp.connectors.portal_push); replaces an earlier one."""
        await self.http.call(
            "subscribe",
            "PUT",
            "/api/v1/subscriptions/{province}",
            path={"province": province_code},
            json_body={"url": url, "secret": secret},
        )

    async def push_status(
        self,
        receipt_code: str,
        status: int,
        updated_at: datetime,
        *,
        agency_code: str,
        procedure_code: str,
        reason: str | None = None,
        procedure_name: str | None = None,
        portal_code: str | None = None,
    ) -> tuple[PortalDossier, bool]:
        """Report a status (1..10); returns what the portal now has and whether it was a
        repeat. `updated_at` must be timezone-aware."""
        body: dict[str, Any] = {
            "receipt_code": receipt_code,
            "status": status,
            "updated_at": updated_at.isoformat(),
            "agency_code": agency_code,
            "procedure_code": procedure_code,
        }
        if reason is not None:
            body["reason"] = reason
        if procedure_name is not None:
            body["procedure_name"] = procedure_name
        if portal_code:  # an online dossier: the portal knows it by this code already
            body["portal_code"] = portal_code
        reply = await self.http.call("push_status", "POST", "/api/v1/statuses", json_body=body)
        return _dossier(reply.body), bool(reply.body["duplicate"])

    async def get_dossier(self, code: str) -> PortalDossier:
        """What the portal knows, by portal code or receipt code."""
        reply = await self.http.call(
            "get_dossier", "GET", "/api/v1/dossiers/{code}", path={"code": code}
        )
        return _dossier(reply.body)

    async def submit_online(
        self,
        agency_code: str,
        procedure_code: str,
        applicant: dict[str, str],
        procedure_name: str | None = None,
        papers: list[dict[str, Any]] | None = None,
    ) -> PortalDossier:
        """File a dossier on the portal as a citizen would (demo and tests)."""
        reply = await self.http.call(
            "submit_online",
            "POST",
            "/api/v1/dossiers",
            json_body={
                "agency_code": agency_code,
                "procedure_code": procedure_code,
                "procedure_name": procedure_name,
                "applicant": applicant,
                "papers": papers or [],
            },
            idempotent=False,
        )
        return _dossier(reply.body)
