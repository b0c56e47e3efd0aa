"""Notices from the documents' and the dossiers' events, each stored in the event processor's
unit of work (notice_events.py), so a redelivered event sends nothing twice.

    DocumentReceived        → the receiving agency's clerks (văn thư)
    DocumentAssigned        → the handler and the co-handlers
    DossierStatusChanged    → the citizen at applicant_email, for the statuses with a notice
    DossierApologyIssued    → the citizen: the apology and the new appointment

A document's notice names it (number, subject, deadline; "văn bản mật" and no subject for a
confidential one) and carries related_document_id; never its content. A dossier's carries
the receipt code (related_receipt_code) and the lookup page's address.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from lgsp.api.documents.v1 import documents_pb2 as dpb
from lgsp.api.documents.v1 import events_pb2 as dev
from lgsp.api.dossiers.v1 import events_pb2 as sev
from lgsp.db import UnitOfWork
from services.mail.adapters.store import MailStore
from services.mail.domain import notice_templates as texts
from services.mail.domain.citizen_address import citizen_address
from services.mail.domain.message import Address
from services.mail.service_layer.notices import Notices

log = logging.getLogger("services.mail.notices")
CONFIDENTIAL_NONE = (dpb.CONFIDENTIALITY_UNSPECIFIED, dpb.CONFIDENTIALITY_NORMAL)


def _time(t: Timestamp, present: bool) -> datetime | None:
    return t.ToDatetime(tzinfo=UTC) if present else None


class EventNotices(Notices):
    # --- documents -------------------------------------------------------------------------

    def on_document_received(self, uow: UnitOfWork, doc: dpb.Document) -> int:
        """DocumentReceived: remember the document (an assignment names it), tell the
        receiving agency's clerks. The number of notices stored."""
        store = MailStore(uow.session)
        confidential = doc.confidentiality not in CONFIDENTIAL_NONE
        store.put_document(
            dict(
                document_id=doc.id,
                agency_code=doc.agency_code,
                number_notation=doc.number_notation[:100],
                subject="" if confidential else doc.subject[:1000],
                sender_agency_name=doc.sender_agency_name[:300],
                confidential=confidential,
            )
        )
        agency = self.agencies.get(doc.agency_code)
        notice = texts.document_received(
            agency_name=agency.name if agency else doc.agency_code,
            number_notation=doc.number_notation,
            subject=doc.subject,
            sender_agency_name=doc.sender_agency_name,
            arrival_number=doc.arrival_number,
            due_date=doc.due_date,
            confidential=confidential,
            sender=self.rules.notice_sender_name,
        )
        sent = 0
        for user_id in store.clerks_of(doc.agency_code):
            outcome = self.notify_user(uow, user_id, notice, (doc.id, ""), "document-received")
            sent += outcome != "skipped"
        return sent

    def on_document_assigned(self, uow: UnitOfWork, ev: dev.DocumentAssigned) -> int:
        store = MailStore(uow.session)
        doc = store.document(ev.document_id) or {}
        people = [(ev.handler_user_id, True)] + [(u, False) for u in ev.co_handler_user_ids]
        sent, seen = 0, set()
        for user_id, lead in people:
            if not user_id or user_id in seen:
                continue
            seen.add(user_id)
            user = store.user(user_id)
            notice = texts.document_assigned(
                name=user["display_name"] if user else "",
                lead=lead,
                number_notation=doc.get("number_notation", ""),
                subject=doc.get("subject", ""),
                due_date=ev.due_date,
                comment=ev.comment,
                confidential=bool(doc.get("confidential", False)),
                sender=self.rules.notice_sender_name,
            )
            outcome = self.notify_user(uow, user_id, notice, (ev.document_id, ""), "assigned")
            sent += outcome != "skipped"
        return sent

    # --- dossiers (citizens) ---------------------------------------------------------------

    def lookup_url(self) -> str:
        return self.rules.dossier_lookup_url

    def _citizen(self, raw: str, receipt_code: str) -> str | None:
        if not raw:
            log.debug("dossier %s: no applicant address, no notice", receipt_code)
            return None
        address = citizen_address(raw)
        if address is None:
            log.warning(
                "dossier %s: applicant address %r is not a plain mail address, no notice",
                receipt_code,
                raw[:80],
            )
        return address

    def on_dossier_status(self, uow: UnitOfWork, ev: sev.DossierStatusChanged) -> str:
        status = int(ev.to_status)
        if status not in texts.DOSSIER_NOTICES or ev.from_status == ev.to_status:
            return "none"
        address = self._citizen(ev.applicant_email, ev.receipt_code)
        if address is None:
            return "skipped"
        notice = texts.dossier_status(
            status=status,
            receipt_code=ev.receipt_code,
            applicant_name=ev.applicant_name,
            reason=ev.reason,
            due_time=_time(ev.due_time, ev.HasField("due_time")),
            fee_vnd=ev.fee_vnd,
            payment_url=ev.payment_url,
            lookup_url=self.lookup_url(),
            sender=self.rules.notice_sender_name,
        )
        to = Address(address, texts.one_line(ev.applicant_name, 100))
        return self.notify(uow, to, notice, related=("", ev.receipt_code), kind="dossier")

    def on_dossier_apology(self, uow: UnitOfWork, ev: sev.DossierApologyIssued) -> str:
        address = self._citizen(ev.applicant_email, ev.receipt_code)
        if address is None:
            return "skipped"
        notice = texts.dossier_apology(
            receipt_code=ev.receipt_code,
            applicant_name=ev.applicant_name,
            reason=ev.reason,
            rescheduled=_time(ev.rescheduled_due_time, ev.HasField("rescheduled_due_time")),
            lookup_url=self.lookup_url(),
            sender=self.rules.notice_sender_name,
        )
        to = Address(address, texts.one_line(ev.applicant_name, 100))
        return self.notify(uow, to, notice, related=("", ev.receipt_code), kind="apology")
