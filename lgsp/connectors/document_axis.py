"""Client of the national document axis: mailboxes of agencies, edXML in and out.

Sending is safe to retry: the axis recognises a document by (sender, DocumentId) and a
status by its bytes, so a resend after a lost answer gives the same package id
(`duplicate=True`) instead of a second delivery.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lgsp.connectors.base import NationalClient

XML = {"Content-Type": "application/xml"}
MAX_MAILBOXES = 1000  # codes in one multi-mailbox poll


@dataclass(frozen=True)
class Agency:
    code: str
    name: str


@dataclass(frozen=True)
class SentPackage:
    package_id: str
    message_id: str
    sender: str
    recipients: tuple[str, ...]
    duplicate: bool
    # Recipients the axis does not know: the package reached the others, not these.
    undeliverable: tuple[str, ...] = ()


@dataclass(frozen=True)
class SentStatus:
    package_id: str
    status_code: str
    original_package_id: str
    delivered_to: str
    duplicate: bool


@dataclass(frozen=True)
class AxisPackage:
    package_id: str
    kind: str  # "document" | "status"
    sender: str
    message_id: str | None  # DocumentId of a document
    sha256: str
    received_at: str
    body: bytes  # the edXML as sent
    status_code: str | None = None  # of a status
    original_package_id: str | None = None  # of a status
    agency_code: str = ""  # the mailbox it waits in (a multi-mailbox poll names it)


@dataclass(frozen=True)
class MailboxBatch:
    """What one multi-mailbox poll found: packages oldest first across the mailboxes, and the
    codes the axis has no mailbox for (open them with `register_agency`)."""

    packages: list[AxisPackage]
    unknown: tuple[str, ...]


@dataclass(frozen=True)
class StatusReport:
    package_id: str
    reporter: str
    status_code: str
    received_at: str


class DocumentAxisClient(NationalClient):
    system = "document_axis"

    async def list_agencies(self) -> list[Agency]:
        reply = await self.http.call("list_agencies", "GET", "/api/v1/agencies")
        return [Agency(a["code"], a["name"]) for a in reply.body["agencies"]]

    async def register_agency(self, code: str, name: str) -> Agency:
        """Open the agency's mailbox (a no-op if it is open)."""
        reply = await self.http.call(
            "register_agency",
            "PUT",
            "/api/v1/agencies/{code}",
            path={"code": code},
            json_body={"name": name},
        )
        return Agency(reply.body["code"], reply.body["name"])

    async def send_package(self, edxml: bytes) -> SentPackage:
        reply = await self.http.call(
            "send_package", "POST", "/api/v1/packages", content=edxml, headers=XML
        )
        b = reply.body
        return SentPackage(
            b["package_id"],
            b["message_id"],
            b["sender"],
            tuple(b["recipients"]),
            b["duplicate"],
            tuple(b.get("undeliverable") or ()),
        )

    async def send_status(self, edxml: bytes) -> SentStatus:
        reply = await self.http.call(
            "send_status", "POST", "/api/v1/statuses", content=edxml, headers=XML
        )
        b = reply.body
        return SentStatus(
            b["package_id"],
            b["status_code"],
            b["original_package_id"],
            b["delivered_to"],
            b["duplicate"],
        )

    async def poll(self, agency_code: str, limit: int = 20) -> list[AxisPackage]:
        """Packages waiting in the agency's mailbox, oldest first; they stay until acked."""
        reply = await self.http.call(
            "poll",
            "GET",
            "/api/v1/agencies/{code}/packages",
            path={"code": agency_code},
            params={"limit": limit},
        )
        return [_package(p, agency_code) for p in reply.body["packages"]]

    async def poll_mailboxes(self, agency_codes: Sequence[str], limit: int = 20) -> MailboxBatch:
        """Packages waiting in any of the mailboxes, in one call (at most MAX_MAILBOXES
        codes); each names its mailbox. They stay until acked."""
        reply = await self.http.call(
            "poll_mailboxes",
            "POST",
            "/api/v1/mailboxes/packages",
            json_body={"agencies": list(agency_codes), "limit": limit},
        )
        return MailboxBatch(
            [_package(p, p["agency_code"]) for p in reply.body["packages"]],
            tuple(reply.body.get("unknown", ())),
        )

    async def ack(self, agency_code: str, package_id: str) -> bool:
        """Remove a package from the mailbox; True if it had been acked already."""
        reply = await self.http.call(
            "ack",
            "POST",
            "/api/v1/agencies/{code}/packages/{id}/ack",
            path={"code": agency_code, "id": package_id},
        )
        return bool(reply.body["already_acked"])

    async def statuses(self, package_id: str) -> list[StatusReport]:
        reply = await self.http.call(
            "statuses", "GET", "/api/v1/packages/{id}/statuses", path={"id": package_id}
        )
        return [
            StatusReport(s["package_id"], s["reporter"], s["status_code"], s["received_at"])
            for s in reply.body["statuses"]
        ]


def _package(p: dict[str, Any], agency_code: str) -> AxisPackage:
    return AxisPackage(
        p["package_id"],
        p["kind"],
        p["sender"],
        p["message_id"],
        p["sha256"],
        p["received_at"],
        p["body"].encode("utf-8"),
        p.get("status_code"),
        p.get("original_package_id"),
        agency_code,
    )
